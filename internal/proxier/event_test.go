package proxier

import (
	"fmt"
	"slices"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fault"
	"github.com/ipvs-proxy/ipvs-proxy/internal/syncevent"
)

// eventProxier is a proxier over the fake kernel behind inj, on a fake
// clock, with the retry waits the tests below expect (RetryMin 10 ms,
// RetryMax 20 ms, ServiceRetryMax 40 ms), fed n Services of two endpoints.
func eventProxier(fk *fake.Kernel, inj *fault.Injector, n int) (*Proxier, *testclock.FakeClock) {
	clk := testclock.NewFakeClock(time.Unix(1_000_000, 0))
	cfg := config.Default()
	cfg.IPVS.SyncPeriod = time.Hour
	p := New(Config{Kernel: fault.Wrap(fk.Interfaces(), inj), Config: cfg, Clock: clk, RetryMin: 10 * time.Millisecond,
		RetryMax: 20 * time.Millisecond, ServiceRetryMax: 40 * time.Millisecond})
	for i := range n {
		name := fmt.Sprintf("svc-%d", i)
		p.UpsertService(service(name, fmt.Sprintf("10.96.0.%d", i+1), 80))
		p.UpsertSlice(endpoints(name, "10.244.1.1", "10.244.1.2"))
	}
	p.SetNode(NodeInfo{Name: "node1"})
	p.SetSynced()
	return p, clk
}

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
	p, clk := eventProxier(fk, inj, 2)
	p.sourceWait = time.Second // what Run measured while waiting for the source
	first := p.Step(FullSync).Event()
	want := []string{"source", "compute", "observe", "observe/ipvs", "observe/addresses", "observe/ipset", "observe/rules",
		"plan", "apply/link", "apply/sysctl", "apply/ipvs", "apply/ipset", "apply/iptables", "record"}
	if got := phaseNames(first); !slices.Equal(got, want) {
		t.Errorf("cold start phases %q, want %q", got, want)
	}
	if len(first.Planned) != first.Ops || !slices.Contains(first.Planned, "add-vs -A -t 10.96.0.1:80 -s rr") {
		t.Errorf("cold start planned %q (%d ops)", first.Planned, first.Ops)
	}
	if first.Applied["add-rs"] != 4 || first.Incomplete() {
		t.Errorf("cold start applied %v, incomplete %v", first.Applied, first.Incomplete())
	}

	p.UpsertSlice(endpoints("svc-1", "10.244.1.1", "10.244.1.2", "10.244.1.3"))
	e := p.Step(PartialSync).Event()
	if got, want := phaseNames(e), []string{"compute", "plan", "apply/ipvs", "record"}; !slices.Equal(got, want) {
		t.Errorf("partial sync phases %q, want %q", got, want)
	}
	if !slices.Equal(e.Planned, []string{"add-rs -a -t 10.96.0.2:80 -r 10.244.1.3:8080 -m -w 1"}) || e.SinceChange <= 0 {
		t.Errorf("endpoint added: planned %q, sinceChange %s", e.Planned, e.SinceChange)
	}

	// a Service's failure is the Service's: recorded under failing, retried
	// on its own with a doubling wait (RetryMin 10 ms to ServiceRetryMax 40 ms)
	inj.SetRate(1)
	p.UpsertSlice(endpoints("svc-1", "10.244.1.1", "10.244.1.2", "10.244.1.3", "10.244.1.4"))
	var waits []time.Duration
	for len(waits) < 3 {
		e := p.Step(PartialSync).Event()
		if len(e.Failing) != 1 || e.Failing[0].Service != "default/svc-1" || len(e.Failing[0].Errors) != 1 || len(e.Errors) != 0 {
			t.Fatalf("a failed add-rs: failing %+v, errors %q", e.Failing, e.Errors)
		}
		waits = append(waits, e.Failing[0].RetryAfter)
		clk.Step(e.Failing[0].RetryAfter) // the retry is due
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
	p, _ := eventProxier(fk, inj, 1)
	l := newLoop(p)
	l.start()
	defer l.stop()
	var after []time.Duration
	for range 3 {
		st := l.step(FullSync)
		e := st.Event()
		if !e.Incomplete() {
			t.Fatalf("a full sync without the node's addresses is complete: %+v", e)
		}
		after = append(after, e.RetryAfter)
		l.done(FullSync, st)
		l.retryTimer = nil // as when the retry timer fires
	}
	if want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond}; !slices.Equal(after, want) {
		t.Errorf("failed syncs recorded retries after %v, want %v", after, want)
	}
}
