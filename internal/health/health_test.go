package health

import (
	"errors"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time                  { return c.t }
func (c *clock) add(d time.Duration)             { c.t = c.t.Add(d) }
func newClock() *clock                           { return &clock{t: time.Unix(1000, 0)} }
func tracker(c *clock) *Tracker                  { return NewTracker(10*time.Second, time.Minute, c.now) }
func (c *clock) since(d time.Duration) time.Time { return c.t.Add(-d) }

func TestTracker(t *testing.T) {
	c := newClock()
	tr := tracker(c)
	tr.Synced(c.now(), true)
	if !tr.Status().Healthy {
		t.Fatal("synced with nothing queued is healthy")
	}
	tr.Queued()
	start := c.now()
	c.add(5 * time.Second)
	tr.Failed(errors.New("boom"))
	if !tr.Status().Healthy {
		t.Fatal("unhealthy before the grace period")
	}
	c.add(6 * time.Second)
	if s := tr.Status(); s.Healthy || s.LastError != "boom" || !s.Live {
		t.Fatalf("want unhealthy (but live) with the error after the grace period, got %+v", s)
	}
	tr.Synced(c.now(), false)
	if !tr.Status().Healthy {
		t.Fatal("healthy again after a successful sync")
	}
	// a change queued during a sync stays queued after it
	tr.Queued()
	tr.Synced(start, false)
	if tr.Status().QueuedSince.IsZero() {
		t.Fatal("a change that arrived during the sync was dropped")
	}
}

// Like kube-proxy, nothing is healthy before the first full sync has
// succeeded: a load balancer must not send traffic to a node whose kernel
// holds nothing yet. Partial syncs do not count.
func TestUnhealthyUntilTheFirstFullSync(t *testing.T) {
	c := newClock()
	tr := tracker(c)
	if s := tr.Status(); s.Healthy || s.Started || !s.Live {
		t.Fatalf("fresh: %+v, want not healthy, not started, live", s)
	}
	tr.Synced(c.now(), false)
	if tr.Status().Healthy {
		t.Fatal("healthy after a partial sync only")
	}
	tr.Synced(c.now(), true)
	if !tr.Status().Healthy {
		t.Fatal("not healthy after the first full sync")
	}
}

// A Node being deleted or tainted by the cluster autoscaler is not eligible:
// /healthz fails (load balancers drain it), /livez does not.
func TestNodeEligibility(t *testing.T) {
	c := newClock()
	tr := tracker(c)
	tr.Synced(c.now(), true)
	tr.NodeEligible(false, "the Node is being deleted")
	if s := tr.Status(); s.Healthy || s.NodeEligible || s.NotEligibleWhy != "the Node is being deleted" || !s.Live {
		t.Fatalf("not eligible: %+v", s)
	}
	tr.NodeEligible(true, "")
	if s := tr.Status(); !s.Healthy || !s.NodeEligible {
		t.Fatalf("eligible again: %+v", s)
	}
}

// /livez fails only when the loop has not turned for the liveness timeout.
func TestLiveness(t *testing.T) {
	c := newClock()
	tr := tracker(c)
	c.add(59 * time.Second)
	if !tr.Status().Live {
		t.Fatal("not live before the liveness timeout")
	}
	tr.Turned()
	c.add(time.Minute)
	if !tr.Status().Live {
		t.Fatal("not live a minute after a turn")
	}
	c.add(time.Second)
	if s := tr.Status(); s.Live || s.LastTurned != c.since(61*time.Second) {
		t.Fatalf("a loop that has not turned for 61 s is live: %+v", s)
	}
	tr.Failed(errors.New("a failed sync is a turn too"))
	if !tr.Status().Live {
		t.Fatal("not live after a failed sync")
	}
}
