package proxier

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fault"
	"github.com/ipvs-proxy/ipvs-proxy/internal/plan"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var nodeIP = netip.MustParseAddr("10.0.0.1")

type harness struct {
	t      *testing.T
	fk     *fake.Kernel
	p      *Proxier
	syncs  chan SyncStats
	cancel context.CancelFunc
	done   chan struct{}
}

func start(t *testing.T, fk *fake.Kernel, k kernel.Kernel, mutate func(*config.Config)) *harness {
	t.Helper()
	return startWith(t, fk, k, mutate, nil)
}

// startWith is start with a hook that may change the proxier's Config.
func startWith(t *testing.T, fk *fake.Kernel, k kernel.Kernel, mutate func(*config.Config), pcfg func(*Config)) *harness {
	t.Helper()
	cfg := config.Default()
	cfg.IPVS.SyncPeriod = time.Hour
	if mutate != nil {
		mutate(cfg)
	}
	h := &harness{t: t, fk: fk, syncs: make(chan SyncStats, 100), done: make(chan struct{})}
	c := Config{Kernel: k, Config: cfg, DrainCheckPeriod: 20 * time.Millisecond, RetryMin: 10 * time.Millisecond,
		RetryMax: 20 * time.Millisecond, ServiceRetryMax: 40 * time.Millisecond, OnSync: func(s SyncStats) { h.syncs <- s }}
	if pcfg != nil {
		pcfg(&c)
	}
	h.p = New(c)
	var ctx context.Context
	ctx, h.cancel = context.WithCancel(context.Background())
	go func() { defer close(h.done); _ = h.p.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.cancel()
	<-h.done
}

// next waits for the next sync of the given type (a partial one that
// recomputed something); "retry" is the next sync with operations.
func (h *harness) next(typ string) SyncStats {
	h.t.Helper()
	for {
		select {
		case s := <-h.syncs:
			if typ == "retry" && s.Ops > 0 {
				return s
			}
			if s.Type == typ && (typ != "partial" || s.Services > 0) {
				return s
			}
		case <-time.After(5 * time.Second):
			h.t.Fatalf("no %s sync within 5s", typ)
		}
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

func (h *harness) feed(n int) {
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("svc-%d", i)
		h.p.UpsertService(service(name, fmt.Sprintf("10.96.0.%d", i+1), 80))
		h.p.UpsertSlice(endpoints(name, "10.244.1.1", "10.244.1.2"))
	}
	h.p.SetNode(NodeInfo{Name: "node1"})
	h.p.SetSynced()
}

func TestColdStartThenIncremental(t *testing.T) {
	fk := fake.New(nodeIP)
	h := start(t, fk, fk.Interfaces(), nil)
	h.feed(3)
	first := h.next("full")
	if first.Err != nil || first.Failed != 0 {
		t.Fatalf("cold start failed: %v", first.Err)
	}
	want := "-A -t 10.96.0.1:80 -s rr\n-a -t 10.96.0.1:80 -r 10.244.1.1:8080 -m -w 1\n-a -t 10.96.0.1:80 -r 10.244.1.2:8080 -m -w 1\n"
	if got := fk.IPVS.Save(); !strings.HasPrefix(got, want) {
		t.Fatalf("kernel after cold start:\n%s", got)
	}
	save, _ := fk.IPTables.Save(state.IPv4)
	if !strings.Contains(save, "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES") {
		t.Fatalf("jump rule missing:\n%s", save)
	}

	// one endpoint added: exactly one real-server op
	before := fk.Writes()
	h.p.UpsertSlice(endpoints("svc-1", "10.244.1.1", "10.244.1.2", "10.244.1.3"))
	s := h.next("partial")
	if s.Ops != 1 || s.Counts[plan.AddRS] != 1 || fk.Writes()-before != 1 {
		t.Fatalf("one endpoint added: %d ops %v, %d kernel writes; want exactly one add-rs", s.Ops, s.Counts, fk.Writes()-before)
	}
	// one Service deleted: its member, virtual server, address
	before = fk.Writes()
	h.p.DeleteService("default", "svc-2")
	s = h.next("partial")
	if s.Counts[plan.DelVS] != 1 || s.Counts[plan.DelAddress] != 1 || fk.Writes()-before != s.Ops {
		t.Fatalf("Service deleted: %v", s.Counts)
	}
	if strings.Contains(fk.IPVS.Save(), "10.96.0.3:80") {
		t.Fatal("deleted Service still in IPVS")
	}
}

func TestRestartAdoptsWithoutWrites(t *testing.T) {
	fk := fake.New(nodeIP)
	h := start(t, fk, fk.Interfaces(), nil)
	h.feed(5)
	h.next("full")
	h.stop()
	before := fk.Writes()
	saved := fk.IPVS.Save()

	h2 := start(t, fk, fk.Interfaces(), nil)
	h2.feed(5)
	s := h2.next("full")
	if s.Ops != 0 || fk.Writes() != before {
		t.Fatalf("restart wrote %d ops to an up-to-date kernel", fk.Writes()-before)
	}
	if fk.IPVS.Save() != saved {
		t.Fatal("restart changed the kernel")
	}
}

func TestPeriodicResyncRepairsDriftAndIdleWritesNothing(t *testing.T) {
	fk := fake.New(nodeIP)
	h := start(t, fk, fk.Interfaces(), func(c *config.Config) { c.IPVS.SyncPeriod = 50 * time.Millisecond })
	h.feed(3)
	h.next("full")
	if s := h.next("full"); s.Ops != 0 {
		t.Fatalf("idle resync planned %d ops", s.Ops)
	}
	// tamper: a real server, a set member and an address go missing
	k := state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr("10.96.0.1"), Port: 80}
	fk.IPVS.Exec([]kernel.IPVSOp{{Cmd: kernel.DelDest, VS: state.VirtualServer{Key: k}, RS: state.RealServer{Key: state.RSKey{Addr: netip.MustParseAddr("10.244.1.1"), Port: 8080}}}})
	fk.IPSet.Exec([]kernel.SetOp{{Set: state.SetSpec{Name: "KUBE-CLUSTER-IP", Type: state.HashIPPort}, Entry: state.SetEntry{Addr: k.Addr, Proto: state.TCP, Port: 80}}})
	fk.Link.Exec([]kernel.AddrOp{{Addr: k.Addr}})
	s := h.next("full")
	if s.Ops != 3 {
		t.Fatalf("repair planned %d ops (%v), want 3", s.Ops, s.Counts)
	}
	if s := h.next("full"); s.Ops != 0 {
		t.Fatalf("resync after repair planned %d ops", s.Ops)
	}
}

func TestConvergesAfterKernelFailures(t *testing.T) {
	fk := fake.New(nodeIP)
	inj := fault.NewInjector(0.3, 1)
	h := start(t, fk, fault.Wrap(fk.Interfaces(), inj), nil)
	h.feed(20)
	s := h.next("full")
	if s.Failed == 0 {
		t.Fatal("no failure injected")
	}
	if h.p.Health().Status().LastError == "" && s.FailingServices == 0 {
		t.Fatal("failures recorded neither in health nor as failing Services")
	}
	inj.SetRate(0)
	ref := fake.New(nodeIP)
	hr := start(t, ref, ref.Interfaces(), nil)
	hr.feed(20)
	hr.next("full")
	// the node's failures are retried by full syncs, the Services' by their own retries
	for i := 0; fk.IPVS.Save() != ref.IPVS.Save() || fk.IPSet.Save() != ref.IPSet.Save(); i++ {
		if i > 50 {
			t.Fatalf("did not converge:\n%s\nwant:\n%s", fk.IPVS.Save(), ref.IPVS.Save())
		}
		h.next("retry")
	}
}

func TestDrainThenDelete(t *testing.T) {
	fk := fake.New(nodeIP)
	h := start(t, fk, fk.Interfaces(), nil)
	h.feed(1)
	h.next("full")
	k := state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr("10.96.0.1"), Port: 80}
	gone := state.RSKey{Addr: netip.MustParseAddr("10.244.1.2"), Port: 8080}
	fk.IPVS.SetConns(k, gone, 1, 0)
	h.p.UpsertSlice(endpoints("svc-0", "10.244.1.1"))
	if s := h.next("partial"); s.Counts[plan.EditRS] != 1 {
		t.Fatalf("removed endpoint not drained: %v", s.Counts)
	}
	if !strings.Contains(fk.IPVS.Save(), "-r 10.244.1.2:8080 -m -w 0") {
		t.Fatalf("drained real server not at weight 0:\n%s", fk.IPVS.Save())
	}
	time.Sleep(60 * time.Millisecond) // drain checks see the connection and keep it
	if !strings.Contains(fk.IPVS.Save(), "10.244.1.2:8080") {
		t.Fatal("real server deleted while it still had a connection")
	}
	fk.IPVS.SetConns(k, gone, 0, 0)
	if s := h.next("drain"); s.Counts[plan.DelRS] != 1 {
		t.Fatalf("idle drained real server not deleted: %v", s.Counts)
	}
}

func TestForeignVirtualServerSurvives(t *testing.T) {
	fk := fake.New(nodeIP)
	foreign := state.VirtualServer{Key: state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr("192.168.7.7"), Port: 8080}, Scheduler: "wlc"}
	fk.IPVS.Exec([]kernel.IPVSOp{{Cmd: kernel.AddService, VS: foreign}})
	h := start(t, fk, fk.Interfaces(), func(c *config.Config) { c.IPVS.SyncPeriod = 30 * time.Millisecond })
	h.feed(2)
	h.next("full")
	h.next("full")
	if !strings.Contains(fk.IPVS.Save(), "-A -t 192.168.7.7:8080 -s wlc") {
		t.Fatal("foreign virtual server was touched")
	}
}

// concurrent sources must be safe (run with -race).
func TestConcurrentSources(t *testing.T) {
	fk := fake.New(nodeIP)
	h := start(t, fk, fk.Interfaces(), nil)
	h.feed(1)
	h.next("full")
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				name := fmt.Sprintf("w%d-%d", w, i)
				h.p.UpsertService(service(name, fmt.Sprintf("10.97.%d.%d", w, i+1), 80))
				h.p.UpsertSlice(endpoints(name, "10.244.2.1"))
			}
		}(w)
	}
	wg.Wait()
	deadline := time.After(5 * time.Second)
	for strings.Count(fk.IPVS.Save(), "-A ") < 201 {
		select {
		case <-h.syncs:
		case <-deadline:
			t.Fatalf("only %d virtual servers programmed", strings.Count(fk.IPVS.Save(), "-A "))
		}
	}
}

func TestRejectedUpdateKeepsLastValidVersion(t *testing.T) {
	fk := fake.New(nodeIP)
	h := start(t, fk, fk.Interfaces(), nil)
	h.feed(2)
	h.next("full")
	before := fk.IPVS.Save()
	bad := service("svc-0", "10.96.0.1", 80)
	bad.Spec.SessionAffinity = "Sticky" // invalid: the whole Service is rejected
	h.p.UpsertService(bad)
	s := h.next("partial")
	if s.Ops != 0 || fk.IPVS.Save() != before {
		t.Fatalf("a rejected update changed the kernel (%d ops)", s.Ops)
	}
	if errs := h.p.index.Errors("default/svc-0"); len(errs) != 2 {
		t.Fatalf("want the field error and the keeping note, got %v", errs)
	}
	h.p.UpsertService(service("svc-0", "10.96.0.1", 81)) // fixed, and changed
	if s := h.next("partial"); s.Counts[plan.AddVS] != 1 || s.Counts[plan.DelVS] != 1 {
		t.Fatalf("fixed Service not reprogrammed: %v", s.Counts)
	}
}

// A NodePort left on an address the node no longer has is removed by the
// next full sync, not leaked forever.
func TestNodePortFollowsNodeAddresses(t *testing.T) {
	fk := fake.New(nodeIP)
	h := start(t, fk, fk.Interfaces(), func(c *config.Config) { c.IPVS.SyncPeriod = 30 * time.Millisecond })
	svc := service("np", "10.96.1.1", 80)
	svc.Spec.Type = v1.ServiceTypeNodePort
	svc.Spec.Ports[0].NodePort = 30080
	h.p.UpsertService(svc)
	h.p.SetNode(NodeInfo{Name: "node1"})
	h.p.SetSynced()
	h.next("full")
	if !strings.Contains(fk.IPVS.Save(), "-A -t 10.0.0.1:30080") {
		t.Fatalf("no NodePort on the node address:\n%s", fk.IPVS.Save())
	}
	fk.Link.SetNodeAddresses(netip.MustParseAddr("10.0.0.2")) // the node's address changed
	deadline := time.Now().Add(5 * time.Second)
	for strings.Contains(fk.IPVS.Save(), "10.0.0.1:30080") || !strings.Contains(fk.IPVS.Save(), "-A -t 10.0.0.2:30080") {
		if time.Now().After(deadline) {
			t.Fatalf("NodePort did not follow the node's address:\n%s", fk.IPVS.Save())
		}
		h.next("full")
	}
}
