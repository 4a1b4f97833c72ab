// Package health tracks whether the proxy keeps the kernel in step with its
// source, with kube-proxy's semantics for /healthz, and whether its sync loop
// is alive, for /livez:
//
//   - /healthz (what load balancers ask) is unhealthy until the first full
//     sync has succeeded, while a change (or a required resync) has waited
//     longer than the timeout, and while the Node is not eligible for
//     traffic (being deleted, or tainted ToBeDeletedByClusterAutoscaler by
//     the cluster autoscaler, KEP-3836). A Service whose operations the
//     kernel refuses is that Service's problem, retried on its own and
//     reported; it never counts here (see the proxier).
//   - /livez (what the kubelet's liveness probe asks) fails only when the
//     sync loop has not turned for the liveness timeout: a sync stuck in the
//     kernel, or a deadlock. A restart cannot fix a refused Service, an
//     unreachable API server or a node being drained, so none of them
//     fails /livez.
package health

import (
	"sync"
	"time"
)

// Tracker records queued changes, completed syncs and the sync loop's turns.
// It is safe for concurrent use.
type Tracker struct {
	mu      sync.Mutex
	timeout time.Duration
	// liveness is how long the sync loop may go without turning.
	liveness time.Duration
	now      func() time.Time
	// queued is when the oldest change not yet in the kernel arrived (zero: none).
	queued time.Time
	// updated is when the last sync succeeded; started says a full sync has.
	updated time.Time
	started bool
	// sourceStale is when the source stopped answering (zero: it answers).
	sourceStale time.Time
	lastErr     string
	// notEligible says why the Node may not take traffic ("" when it may).
	notEligible string
	// turned is when the sync loop last turned.
	turned time.Time
}

// NewTracker returns a tracker that reports unhealthy once a change waits
// longer than timeout, and not live once the sync loop has not turned for
// liveness (0: four times timeout, at least two minutes).
func NewTracker(timeout, liveness time.Duration, now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	if liveness == 0 {
		liveness = max(4*timeout, 2*time.Minute)
	}
	return &Tracker{timeout: timeout, liveness: liveness, now: now, turned: now()}
}

// Queued records that a change (or a resync) is waiting to be applied.
func (t *Tracker) Queued() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.queued.IsZero() {
		t.queued = t.now()
	}
}

// Synced records a successful sync that started at start: changes queued
// before it are in the kernel. full says it was a full sync (the first one
// makes the node healthy).
func (t *Tracker) Synced(start time.Time, full bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.started = t.started || full
	t.updated = t.now()
	t.turned = t.updated
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
	t.turned = t.now()
}

// Turned records that the sync loop is turning (it calls this at least
// every few seconds when idle, and after every sync).
func (t *Tracker) Turned() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.turned = t.now()
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

// NodeEligible records whether the Node may take load balancer traffic;
// why says why not (e.g. "the Node is being deleted").
func (t *Tracker) NodeEligible(eligible bool, why string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if eligible {
		t.notEligible = ""
	} else {
		t.notEligible = why
	}
}

// Status is a point-in-time view of health.
type Status struct {
	// Healthy is /healthz: a full sync has succeeded, no change waits past
	// the timeout, and the Node is eligible.
	Healthy bool
	// Started is false until the first full sync has succeeded.
	Started bool
	// NodeEligible is false while the Node is being deleted or tainted for
	// deletion; NotEligibleWhy says which.
	NodeEligible   bool
	NotEligibleWhy string
	// Live is /livez: the sync loop has turned within the liveness timeout.
	Live bool
	// LastTurned is when the sync loop last turned.
	LastTurned  time.Time
	LastUpdated time.Time
	// QueuedSince is when the oldest pending change arrived (zero: none pending).
	QueuedSince time.Time
	// SourceStaleSince is when the source stopped answering (zero: fine).
	SourceStaleSince time.Time
	LastError        string
	// Now is when the status was taken.
	Now time.Time
}

// Status reports health.
func (t *Tracker) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	s := Status{Started: t.started, LastUpdated: t.updated, QueuedSince: t.queued, SourceStaleSince: t.sourceStale,
		LastError: t.lastErr, NodeEligible: t.notEligible == "", NotEligibleWhy: t.notEligible, LastTurned: t.turned, Now: now}
	// a stale source does not make the node unhealthy: what is programmed
	// keeps serving; it shows in the body and in the metrics
	inStep := t.queued.IsZero() || now.Sub(t.queued) <= t.timeout
	s.Healthy = t.started && inStep && s.NodeEligible
	s.Live = now.Sub(t.turned) <= t.liveness
	return s
}
