package proxier

import (
	"slices"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fault"
	"github.com/ipvs-proxy/ipvs-proxy/internal/syncevent"
)

func phaseNames(e syncevent.Event) []string {
	var names []string
	for _, p := range e.Phases {
		names = append(names, p.Name)
	}
	return names
}

func TestSyncEvents(t *testing.T) {
	fk := fake.New(nodeIP)
	inj := fault.NewInjector(0, 1)
	h := start(t, fk, fault.Wrap(fk.Interfaces(), inj), nil)
	h.feed(2)
	first := h.next("full").Event()
	want := []string{"source", "compute", "observe", "observe/ipvs", "observe/addresses", "observe/ipset", "observe/rules",
		"plan", "apply/link", "apply/sysctl", "apply/ipvs", "apply/ipset", "apply/iptables", "record"}
	if got := phaseNames(first); !slices.Equal(got, want) {
		t.Errorf("cold start phases %q, want %q", got, want)
	}
	if len(first.Planned) != first.Ops || !slices.Contains(first.Planned, "add-vs -A -t 10.96.0.1:80 -s rr") {
		t.Errorf("cold start planned %q (%d ops)", first.Planned, first.Ops)
	}
	if first.Applied["add-rs"] != 4 || first.Incomplete() || first.Took() <= 0 {
		t.Errorf("cold start applied %v, incomplete %v, took %s", first.Applied, first.Incomplete(), first.Took())
	}

	h.p.UpsertSlice(endpoints("svc-1", "10.244.1.1", "10.244.1.2", "10.244.1.3"))
	e := h.next("partial").Event()
	if got, want := phaseNames(e), []string{"compute", "plan", "apply/ipvs", "record"}; !slices.Equal(got, want) {
		t.Errorf("partial sync phases %q, want %q", got, want)
	}
	if !slices.Equal(e.Planned, []string{"add-rs -a -t 10.96.0.2:80 -r 10.244.1.3:8080 -m -w 1"}) || e.SinceChange <= 0 {
		t.Errorf("endpoint added: planned %q, sinceChange %s", e.Planned, e.SinceChange)
	}

	// a Service's failure is the Service's: recorded under failing, retried
	// on its own with a doubling wait (RetryMin 10 ms to ServiceRetryMax 40 ms)
	inj.SetRate(1)
	h.p.UpsertSlice(endpoints("svc-1", "10.244.1.1", "10.244.1.2", "10.244.1.3", "10.244.1.4"))
	var waits []time.Duration
	for len(waits) < 3 {
		var e syncevent.Event
		select {
		case st := <-h.syncs: // the retries recompute nothing: next("partial") skips them
			e = st.Event()
		case <-time.After(5 * time.Second):
			t.Fatalf("no retry of the failing Service within 5s (retries so far after %v)", waits)
		}
		if len(e.Failing) != 1 || e.Failing[0].Service != "default/svc-1" || len(e.Failing[0].Errors) != 1 || len(e.Errors) != 0 {
			t.Fatalf("a failed add-rs: failing %+v, errors %q", e.Failing, e.Errors)
		}
		waits = append(waits, e.Failing[0].RetryAfter)
	}
	if want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}; !slices.Equal(waits, want) {
		t.Errorf("the failing Service's retries recorded after %v, want %v", waits, want)
	}

}

// TestSyncEventRetryAfter: a failed sync (the node's addresses unreadable
// before any were read) records the wait before its retry, doubling from
// RetryMin (10 ms) to RetryMax (20 ms).
func TestSyncEventRetryAfter(t *testing.T) {
	fk := fake.New(nodeIP)
	inj := fault.NewInjector(0, 1)
	inj.SetFailingReads(fault.ReadNodeAddresses)
	h := start(t, fk, fault.Wrap(fk.Interfaces(), inj), nil)
	h.p.UpsertService(service("web", "10.96.1.2", 80))
	h.p.SetNode(NodeInfo{Name: "node1"})
	h.p.SetSynced()
	var after []time.Duration
	for len(after) < 3 {
		e := h.next("full").Event()
		if !e.Incomplete() {
			t.Fatalf("a full sync without the node's addresses is complete: %+v", e)
		}
		if e.RetryAfter > 0 { // 0: a sync while a retry is pending (the change requeued) schedules none
			after = append(after, e.RetryAfter)
		}
	}
	if want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond}; !slices.Equal(after, want) {
		t.Errorf("failed syncs recorded retries after %v, want %v", after, want)
	}
}
