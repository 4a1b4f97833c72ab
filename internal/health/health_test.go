package health

import (
	"errors"
	"testing"
	"time"
)

func TestTracker(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := NewTracker(10*time.Second, func() time.Time { return now })
	if !tr.Status().Healthy {
		t.Fatal("a fresh tracker with nothing queued is healthy")
	}
	tr.Queued()
	start := now
	now = now.Add(5 * time.Second)
	tr.Failed(errors.New("boom"))
	if !tr.Status().Healthy {
		t.Fatal("unhealthy before the grace period")
	}
	now = now.Add(6 * time.Second)
	if s := tr.Status(); s.Healthy || s.LastError != "boom" {
		t.Fatalf("want unhealthy with the error after the grace period, got %+v", s)
	}
	tr.Synced(now)
	if !tr.Status().Healthy {
		t.Fatal("healthy again after a successful sync")
	}
	// a change queued during a sync stays queued after it
	tr.Queued()
	tr.Synced(start)
	if tr.Status().QueuedSince.IsZero() {
		t.Fatal("a change that arrived during the sync was dropped")
	}
}
