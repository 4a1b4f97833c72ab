package proxier

import (
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/health"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fault"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// nodePortService is a NodePort Service on 30080.
func nodePortService(name, ip string) *v1.Service {
	svc := service(name, ip, 80)
	svc.Spec.Type = v1.ServiceTypeNodePort
	svc.Spec.Ports[0].NodePort = 30080
	return svc
}

// A failed read of the node's addresses must never shrink what is
// programmed: it used to fall back to the Node object's addresses (none in
// standalone mode), and the next full sync deleted every virtual server.
// The last good read is kept; with none yet, the sync waits for one.
func TestFailedNodeAddressReadKeepsState(t *testing.T) {
	fk := fake.New(nodeIP)
	inj := fault.NewInjector(0, 1)
	inj.SetFailingReads(fault.ReadNodeAddresses)
	h := start(t, fk, fault.Wrap(fk.Interfaces(), inj), nil)
	h.p.UpsertService(nodePortService("np", "10.96.1.1"))
	h.p.UpsertService(service("web", "10.96.1.2", 80))
	h.p.SetNode(NodeInfo{Name: "node1"})
	h.p.SetSynced()
	if s := h.next("full"); s.Err == nil || s.Ops != 0 || fk.Writes() != 0 {
		t.Fatalf("first full sync without the node's addresses: err %v, %d ops, %d writes; want it skipped", s.Err, s.Ops, fk.Writes())
	}
	if h.p.Health().Status().Started {
		t.Fatal("healthy without a full sync")
	}
	inj.SetFailingReads()
	for s := h.next("full"); s.Err != nil; s = h.next("full") { // retries until the read works
		if !strings.Contains(s.Err.Error(), "cannot list the node's addresses") {
			t.Fatalf("full sync: %v", s.Err)
		}
	}
	programmed := fk.IPVS.Save()
	if !strings.Contains(programmed, "-A -t 10.0.0.1:30080") || !strings.Contains(programmed, "-A -t 10.96.1.2:80") {
		t.Fatalf("not programmed:\n%s", programmed)
	}

	inj.SetFailingReads(fault.ReadNodeAddresses)
	h.p.SetNode(NodeInfo{Name: "node1", Labels: map[string]string{"changed": "yes"}}) // a Node change forces a full sync
	if s := h.next("full"); s.Err != nil || s.Ops != 0 {
		t.Fatalf("full sync while the read fails: err %v, %d ops %v; want the last good addresses and nothing to do", s.Err, s.Ops, s.Counts)
	}
	if got := fk.IPVS.Save(); got != programmed {
		t.Fatalf("a failed address read changed the kernel:\n%s\nwas:\n%s", got, programmed)
	}
	inj.SetFailingReads()
	fk.Link.SetNodeAddresses() // a read that finds no address at all is as bad as a failed one
	h.p.SetNode(NodeInfo{Name: "node1"})
	if s := h.next("full"); s.Ops != 0 || fk.IPVS.Save() != programmed {
		t.Fatalf("an empty address read changed the kernel (%d ops):\n%s", s.Ops, fk.IPVS.Save())
	}
}

// refusingIPVS is a kernel that keeps refusing one virtual server, as a
// kernel lacking a scheduler module refuses a Service that names it.
type refusingIPVS struct {
	kernel.IPVS
	mu     sync.Mutex
	refuse state.VSKey
}

func (r *refusingIPVS) set(k state.VSKey) { r.mu.Lock(); r.refuse = k; r.mu.Unlock() }

func (r *refusingIPVS) Exec(ops []kernel.IPVSOp) []error {
	r.mu.Lock()
	refuse := r.refuse
	r.mu.Unlock()
	errs := make([]error, len(ops))
	var pass []kernel.IPVSOp
	var idx []int
	for i, op := range ops {
		if op.VS.Key == refuse {
			errs[i] = syscall.ENOENT
			continue
		}
		pass, idx = append(pass, op), append(idx, i)
	}
	for n, err := range r.IPVS.Exec(pass) {
		errs[idx[n]] = err
	}
	return errs
}

// errorsOf records the errors a Reporter hears.
type errorsOf struct {
	mu   sync.Mutex
	errs map[string][]error
}

func (e *errorsOf) ServiceErrors(svc string, errs []error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs[svc] = errs
}

func (e *errorsOf) get(svc string) []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.errs[svc]
}

// One Service whose operations the kernel keeps refusing is that Service's
// problem: the full sync still succeeds (the node becomes healthy), the
// Service is reported and retried on its own with a backoff by partial
// syncs, never by a loop of full resyncs, and once the kernel accepts it,
// it is programmed and no longer reported.
func TestRefusedServiceDoesNotAffectTheNode(t *testing.T) {
	fk := fake.New(nodeIP)
	bad := state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr("10.96.0.2"), Port: 80}
	k := fk.Interfaces()
	refusing := &refusingIPVS{IPVS: k.IPVS, refuse: bad}
	k.IPVS = refusing
	rep := &errorsOf{errs: map[string][]error{}}
	h := startWith(t, fk, k, nil, func(c *Config) { c.Reporter = rep })
	h.feed(3) // svc-1 is 10.96.0.2
	first := h.next("full")
	if first.Err != nil || first.FailingServices != 1 {
		t.Fatalf("first full sync: err %v, %d failing Services; want no error and one failing Service", first.Err, first.FailingServices)
	}
	if st := h.p.Health().Status(); !st.Started || !st.Healthy {
		t.Fatalf("the node is not healthy because of one refused Service: %+v", st)
	}
	if !strings.Contains(fk.IPVS.Save(), "-A -t 10.96.0.1:80") || !strings.Contains(fk.IPVS.Save(), "-A -t 10.96.0.3:80") {
		t.Fatalf("the other Services are not programmed:\n%s", fk.IPVS.Save())
	}
	if errs := rep.get("default/svc-1"); len(errs) < 2 || !strings.Contains(errs[0].Error(), "the kernel refuses its operations") ||
		!strings.Contains(errs[1].Error(), "add virtual server TCP 10.96.0.2:80 (default/svc-1:http)") {
		t.Fatalf("the refused Service is reported as %v", errs)
	}
	// retried on its own: partial syncs of its objects only, no full resync
	for range 3 {
		s := h.next("retry")
		if s.Type != "partial" || s.Ops == 0 || s.Ops > 3 || s.FailingServices != 1 || s.Err != nil {
			t.Fatalf("retry: %+v; want a partial sync of the failing Service's few operations", s)
		}
	}
	refusing.set(state.VSKey{})
	for !strings.Contains(fk.IPVS.Save(), "-A -t 10.96.0.2:80") {
		if s := h.next("retry"); s.Type == "full" {
			t.Fatalf("a full sync ran for a Service's retry: %+v", s)
		}
	}
	waitFor(t, "the Service's report cleared", func() bool { return len(rep.get("default/svc-1")) == 0 })
	if m := len(h.p.failing); m != 0 {
		t.Errorf("%d Services still marked failing", m)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not %s after 10 s", what)
		}
	}
}

// blockingIPVS blocks its dumps while held, as a kernel call that hangs.
type blockingIPVS struct {
	kernel.IPVS
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
	b := &blockingIPVS{IPVS: k.IPVS, held: make(chan struct{}), entered: make(chan struct{}, 1)}
	k.IPVS = b
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tracker := health.NewTracker(time.Minute, 2*time.Minute, clock)
	h := startWith(t, fk, k, nil, func(c *Config) { c.Health = tracker; c.TurnPeriod = 5 * time.Millisecond })
	h.feed(1)
	<-b.entered // the first full sync is in the kernel, and stays there
	mu.Lock()
	now = now.Add(3 * time.Minute)
	mu.Unlock()
	if st := tracker.Status(); st.Live {
		t.Fatalf("live while the sync loop has been stuck for 3 minutes: %+v", st)
	}
	close(b.held)
	h.next("full")
	waitFor(t, "live again", func() bool { return tracker.Status().Live })
}

// A Service annotated with a scheduler this node's kernel lacks (any name
// on IPVS's list passes validation) used to have every operation refused,
// failing every full sync. The scheduler is probed: the Service keeps the
// default with an error naming the modprobe line, the node's syncs succeed,
// and once the module is loaded the next full sync moves the Service to it.
func TestAnnotationSchedulerMissingFromTheKernel(t *testing.T) {
	fk := fake.New(nodeIP)
	fk.IPVS.SetSchedulers("rr", "wrr", "lc")
	rep := &errorsOf{errs: map[string][]error{}}
	h := startWith(t, fk, fk.Interfaces(), func(c *config.Config) { c.IPVS.SyncPeriod = 50 * time.Millisecond },
		func(c *Config) { c.Reporter = rep })
	bad := service("bad", "10.96.0.9", 80)
	bad.Annotations = map[string]string{desired.AnnotationScheduler: "sh"}
	h.p.UpsertService(bad)
	h.feed(2)
	s := h.next("full")
	if s.Err != nil || s.Failed != 0 || !h.p.Health().Status().Healthy {
		t.Fatalf("first full sync: err %v, %d failed, health %+v", s.Err, s.Failed, h.p.Health().Status())
	}
	if !strings.Contains(fk.IPVS.Save(), "-A -t 10.96.0.9:80 -s rr") {
		t.Fatalf("the Service is not programmed with the default scheduler:\n%s", fk.IPVS.Save())
	}
	if errs := rep.get("default/bad"); len(errs) != 1 || !strings.Contains(errs[0].Error(), "this node's kernel has no scheduler \"sh\" (load it with `modprobe ip_vs_sh`)") {
		t.Fatalf("reported: %v", errs)
	}
	for range 3 { // later full syncs neither fail nor probe anything but the missing scheduler
		if s := h.next("full"); s.Err != nil || s.Ops != 0 {
			t.Fatalf("full sync: %+v", s)
		}
	}
	fk.IPVS.SetSchedulers("rr", "wrr", "lc", "sh") // modprobe ip_vs_sh
	waitFor(t, "the Service moved to sh", func() bool { return strings.Contains(fk.IPVS.Save(), "-A -t 10.96.0.9:80 -s sh") })
	waitFor(t, "the error cleared", func() bool { return len(rep.get("default/bad")) == 0 })
}

// A Service that loses a virtual server to another is told so (Event,
// status), and told again when the other one's change settles it, although
// it did not change itself.
func TestContestedServiceIsReportedWhenItsLossChanges(t *testing.T) {
	fk := fake.New(nodeIP)
	rep := &errorsOf{errs: map[string][]error{}}
	h := startWith(t, fk, fk.Interfaces(), nil, func(c *Config) { c.Reporter = rep })
	api := service("kubernetes", "10.96.0.1", 443)
	tenant := service("tenant", "10.96.0.99", 443)
	tenant.Namespace = "aaa"
	tenant.Spec.ExternalIPs = []string{"10.96.0.1"}
	h.p.UpsertService(api)
	h.p.UpsertService(tenant)
	h.p.SetNode(NodeInfo{Name: "node1"})
	h.p.SetSynced()
	h.next("full")
	if errs := rep.get("aaa/tenant"); len(errs) != 1 || !strings.Contains(errs[0].Error(), "externalIP 10.96.0.1 is the ClusterIP of Service default/kubernetes") {
		t.Fatalf("the tenant is told %v", errs)
	}
	h.p.DeleteService("default", "kubernetes")
	h.next("partial")
	waitFor(t, "the tenant told it has the address now", func() bool { return len(rep.get("aaa/tenant")) == 0 })
	if !strings.Contains(fk.IPVS.Save(), "-A -t 10.96.0.1:443") {
		t.Errorf("the tenant's externalIP is not programmed once nobody else has the address:\n%s", fk.IPVS.Save())
	}
}
