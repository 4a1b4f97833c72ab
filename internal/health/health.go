// Package health tracks whether the proxy keeps the kernel in step with its
// source, with kube-proxy's semantics: the node is healthy unless a change
// (or a required resync) has been waiting longer than the timeout.
package health

import (
	"sync"
	"time"
)

// Tracker records queued changes and completed syncs. It is safe for concurrent use.
type Tracker struct {
	mu      sync.Mutex
	timeout time.Duration
	now     func() time.Time
	// queued is when the oldest change not yet in the kernel arrived (zero: none).
	queued time.Time
	// updated is when the last sync succeeded.
	updated time.Time
	// sourceStale is when the source stopped answering (zero: it answers).
	sourceStale time.Time
	lastErr     string
	started     bool
}

// NewTracker returns a tracker that reports unhealthy once a change waits longer than timeout.
func NewTracker(timeout time.Duration, now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{timeout: timeout, now: now}
}

// Queued records that a change (or a resync) is waiting to be applied.
func (t *Tracker) Queued() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.queued.IsZero() {
		t.queued = t.now()
	}
}

// Synced records a successful sync at the given start time: changes queued
// before it are in the kernel.
func (t *Tracker) Synced(start time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.started = true
	t.updated = t.now()
	t.lastErr = ""
	if !t.queued.IsZero() && !t.queued.After(start) {
		t.queued = time.Time{}
	}
}

// Failed records a failed sync; the change stays queued.
func (t *Tracker) Failed(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.queued.IsZero() {
		t.queued = t.now()
	}
	t.lastErr = err.Error()
}

// SourceStale records whether the source (API server or manifest directory) is unreachable.
func (t *Tracker) SourceStale(stale bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case stale && t.sourceStale.IsZero():
		t.sourceStale = t.now()
	case !stale:
		t.sourceStale = time.Time{}
	}
}

// Status is a point-in-time view of health.
type Status struct {
	Healthy bool
	// Started is false until the first sync has succeeded.
	Started     bool
	LastUpdated time.Time
	// QueuedSince is when the oldest pending change arrived (zero: none pending).
	QueuedSince time.Time
	// SourceStaleSince is when the source stopped answering (zero: fine).
	SourceStaleSince time.Time
	LastError        string
}

// Status reports health: unhealthy when a change has waited longer than the timeout.
func (t *Tracker) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Status{Started: t.started, LastUpdated: t.updated, QueuedSince: t.queued, SourceStaleSince: t.sourceStale, LastError: t.lastErr}
	// a stale source does not make the node unhealthy: what is programmed
	// keeps serving; it shows in the body and in the metrics
	s.Healthy = t.queued.IsZero() || t.now().Sub(t.queued) <= t.timeout
	return s
}
