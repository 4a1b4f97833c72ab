package proxier

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/health"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fault"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// What one sync does is in the scripts (TestScripts); these tests are of
// Run, the timer loop around Step, and of the sources feeding it from
// other goroutines. They wait on conditions (a sync reported, a View
// answered between two steps), never on a clock.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// running is a proxier whose Run loop runs on a fake clock.
type running struct {
	p     *Proxier
	clock *testclock.FakeClock
	syncs chan SyncStats
}

func startRun(t *testing.T, c Config) *running {
	r := &running{clock: testclock.NewFakeClock(time.Unix(1_000_000, 0)), syncs: make(chan SyncStats, 1000)}
	if c.Config == nil {
		c.Config = config.Default()
		c.Config.IPVS.SyncPeriod = time.Minute
	}
	c.Clock, c.OnSync = r.clock, func(s SyncStats) { r.syncs <- s }
	r.p = New(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// next returns the next sync reported.
func (r *running) next(t *testing.T) SyncStats {
	t.Helper()
	select {
	case s := <-r.syncs:
		return s
	case <-time.After(time.Minute): // a hang, not a timing assumption
		t.Fatal("no sync")
	}
	return SyncStats{}
}

// between returns once the loop waits between two steps, its timers armed.
func (r *running) between(t *testing.T) {
	t.Helper()
	if _, err := r.p.View(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestRunLoop: nothing before the source has synced; then a full sync at
// once, retried after RetryMin when it fails (the node's failure), a partial
// one per change, a full one each SyncPeriod, and a failing Service retried
// on its own after RetryMin.
func TestRunLoop(t *testing.T) {
	fk := fake.New(nodeIP)
	inj := fault.NewInjector(0, 1)
	inj.SetFailingReads(fault.ReadNodeAddresses)
	r := startRun(t, Config{Kernel: fault.Wrap(fk.Interfaces(), inj)})
	r.p.UpsertService(service("web", "10.96.0.1", 80))
	r.p.SetNode(NodeInfo{Name: "node1"})
	r.between(t)
	if len(r.syncs) != 0 {
		t.Fatal("synced before the source had")
	}
	r.p.SetSynced()
	if s := r.next(t); s.Type != FullSync || s.Err == nil {
		t.Fatalf("first sync without the node's addresses: %+v", s)
	}
	inj.SetFailingReads()
	r.between(t)
	if len(r.syncs) != 0 {
		t.Fatal("retried before RetryMin")
	}
	r.clock.Step(time.Second)
	if s := r.next(t); s.Type != FullSync || s.Err != nil || s.Ops == 0 {
		t.Fatalf("the retry: %+v", s)
	}
	r.p.UpsertSlice(endpoints("web", "10.244.1.1"))
	if s := r.next(t); s.Type != PartialSync || s.Ops != 1 {
		t.Fatalf("after a change: %+v", s)
	}
	r.between(t)
	r.clock.Step(time.Minute)
	if s := r.next(t); s.Type != FullSync || s.Ops != 0 {
		t.Fatalf("after SyncPeriod: %+v", s)
	}
	inj.SetRate(1)
	r.p.UpsertSlice(endpoints("web", "10.244.1.1", "10.244.1.2"))
	if s := r.next(t); s.Type != PartialSync || s.FailingServices != 1 {
		t.Fatalf("a Service's operation refused: %+v", s)
	}
	inj.SetRate(0)
	r.between(t)
	r.clock.Step(time.Second)
	if s := r.next(t); s.Type != PartialSync || s.Ops != 1 || s.Failed != 0 || !strings.Contains(fk.IPVS.Save(), "10.244.1.2:8080") {
		t.Fatalf("the Service's retry: %+v\n%s", s, fk.IPVS.Save())
	}
}

// blockingIPVS blocks its dumps while held, as a kernel call that hangs.
type blockingIPVS struct {
	*fake.IPVS
	held    chan struct{}
	entered chan struct{}
}

func (b *blockingIPVS) Dump() (map[state.VSKey]*state.Service, error) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.held
	return b.IPVS.Dump()
}

// /livez fails only when the sync loop stops turning: a full sync stuck in
// the kernel beyond the liveness timeout; it is live again once it returns.
func TestLivenessFollowsTheSyncLoop(t *testing.T) {
	fk := fake.New(nodeIP)
	k := fk.Interfaces()
	b := &blockingIPVS{IPVS: fk.IPVS, held: make(chan struct{}), entered: make(chan struct{}, 1)}
	k.IPVS = b
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tracker := health.NewTracker(time.Minute, 2*time.Minute, clock)
	r := startRun(t, Config{Kernel: k, Health: tracker})
	r.p.SetNode(NodeInfo{Name: "node1"})
	r.p.SetSynced()
	<-b.entered // the first full sync is in the kernel, and stays there
	mu.Lock()
	now = now.Add(3 * time.Minute)
	mu.Unlock()
	if st := tracker.Status(); st.Live {
		t.Fatalf("live while the sync loop has been stuck for 3 minutes: %+v", st)
	}
	close(b.held)
	r.next(t)
	r.between(t) // the loop turned
	if st := tracker.Status(); !st.Live {
		t.Fatalf("not live once the sync returned: %+v", st)
	}
}

// Sources feeding the proxier from several goroutines while it syncs must
// be safe (run with -race), and every change is applied.
func TestConcurrentSources(t *testing.T) {
	fk := fake.New(nodeIP)
	r := startRun(t, Config{Kernel: fk.Interfaces()})
	r.p.SetNode(NodeInfo{Name: "node1"})
	r.p.SetSynced()
	r.next(t)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				name := fmt.Sprintf("w%d-%d", w, i)
				r.p.UpsertService(service(name, fmt.Sprintf("10.97.%d.%d", w, i+1), 80))
				r.p.UpsertSlice(endpoints(name, "10.244.2.1"))
			}
		})
	}
	wg.Wait()
	for strings.Count(fk.IPVS.Save(), "-A ") < 200 {
		r.next(t)
	}
}

// SetConfig on a proxier that does not run returns when its context ends
// instead of blocking forever.
func TestSetConfigStopped(t *testing.T) {
	p := New(Config{Kernel: fake.New(nodeIP).Interfaces(), Config: config.Default()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.SetConfig(ctx, config.Default()); err == nil {
		t.Error("SetConfig on a stopped proxier returned nil")
	}
}

func service(name, ip string, port int32) *v1.Service {
	return &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: v1.ServiceSpec{ClusterIP: ip, Ports: []v1.ServicePort{{Name: "http", Port: port, Protocol: v1.ProtocolTCP}}}}
}

func endpoints(svc string, ips ...string) *discovery.EndpointSlice {
	es := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: svc + "-1", Labels: map[string]string{discovery.LabelServiceName: svc}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(v1.ProtocolTCP)}},
	}
	for _, ip := range ips {
		es.Endpoints = append(es.Endpoints, discovery.Endpoint{Addresses: []string{ip}, NodeName: ptr.To("node2")})
	}
	return es
}
