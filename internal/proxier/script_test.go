package proxier

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"golang.org/x/tools/txtar"
	testclock "k8s.io/utils/clock/testing"
	"rsc.io/script"
	"rsc.io/script/scripttest"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/health"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fault"
	"github.com/ipvs-proxy/ipvs-proxy/internal/manifest"
	"github.com/ipvs-proxy/ipvs-proxy/internal/metrics"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// TestScripts runs testdata/*.txtar: each script drives one proxier over
// the fake kernel step by step, on the test's goroutine, with a fake clock:
// nothing in them waits on a wall clock, so "nothing happened" is asserted,
// not hoped for. The commands are listed by `help` in a script and
// documented in testdata/README.md.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			t.Parallel()
			runScript(t, file)
		})
	}
}

func runScript(t *testing.T, file string) {
	h := newScriptHarness()
	h.dir = t.TempDir()
	engine := &script.Engine{Cmds: scripttest.DefaultCmds(), Conds: scripttest.DefaultConds()}
	for name, cmd := range h.commands() {
		engine.Cmds[name] = cmd
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ar := txtar.Parse(data)
	s, err := script.NewState(t.Context(), h.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ExtractFiles(ar); err != nil {
		t.Fatal(err)
	}
	scripttest.Run(t, engine, s, file, bytes.NewReader(ar.Comment))
}

// scriptHarness is one script's world: a fake kernel behind a fault
// injector and a refusing IPVS, a fake clock, and the proxier under test
// (made at its first use, so that `config` may come first).
type scriptHarness struct {
	fk       *fake.Kernel
	inj      *fault.Injector
	refusing *refusingIPVS
	clock    *testclock.FakeClock
	cfg      *config.Config
	reports  *errorsOf
	metrics  *metrics.Metrics
	p        *Proxier
	last     SyncStats
	// dir is the script's working directory, where its files are.
	dir string
	// nftSeen is the fake's nftables transactions at the last `nft transactions`.
	nftSeen int
}

func newScriptHarness() *scriptHarness {
	fk := fake.New(nodeIP)
	h := &scriptHarness{fk: fk, inj: fault.NewInjector(0, 1), clock: testclock.NewFakeClock(time.Unix(1_000_000, 0)),
		cfg: config.Default(), reports: &errorsOf{errs: map[string][]error{}}}
	h.refusing = &refusingIPVS{IPVS: fk.IPVS}
	return h
}

// proxier returns the proxier, making it at first use.
func (h *scriptHarness) proxier() *Proxier {
	if h.p == nil {
		k := h.fk.Interfaces()
		k.IPVS = h.refusing
		h.metrics = metrics.New()
		h.p = New(Config{Kernel: fault.Wrap(k, h.inj), Config: h.cfg, Clock: h.clock, Reporter: h.reports, Metrics: h.metrics,
			Health: health.NewTracker(2*h.cfg.IPVS.SyncPeriod, 2*time.Minute, h.clock.Now)})
	}
	return h.p
}

var nodeIP = netip.MustParseAddr("10.0.0.1")

func (h *scriptHarness) commands() map[string]script.Cmd {
	return map[string]script.Cmd{
		"config":         h.cmd("config FILE", "set the configuration (a KubeProxyConfiguration): before the first use, the start's; later, SetConfig's", h.config),
		"apply":          h.cmd("apply FILE...", "upsert the Services and EndpointSlices of manifest files", h.apply),
		"delete":         h.cmd("delete service|slice NAMESPACE/NAME", "delete a Service or an EndpointSlice", h.delete),
		"node":           h.cmd("node NAME [LABEL=VALUE...]", "set the Node object", h.node),
		"synced":         h.cmd("synced", "tell the proxier the source has delivered everything", func(...string) (string, error) { h.proxier().SetSynced(); return "", nil }),
		"restart":        h.cmd("restart", "a new proxier (a restarted daemon) over the same kernel", h.restart),
		"step":           h.cmd("step full|partial|drain", "run one sync; print its type, counts, planned operations and errors", h.step),
		"expect-ops":     h.cmd("expect-ops [KIND=N...]", "the last step applied exactly these operations (none: nothing)", h.expectOps),
		"advance":        h.cmd("advance DURATION", "move the fake clock on", h.advance),
		"conns":          h.cmd("conns VIP:PORT RIP:PORT ACTIVE INACTIVE", "set a TCP real server's connection counts in the kernel", h.conns),
		"node-addresses": h.cmd("node-addresses ADDR...", "set the host's addresses in the kernel", h.nodeAddresses),
		"schedulers":     h.cmd("schedulers NAME...", "the schedulers the kernel has", func(a ...string) (string, error) { h.fk.IPVS.SetSchedulers(a...); return "", nil }),
		"fault":          h.cmd("fault rate R | reads NAME... | refuse VIP:PORT | none", "inject kernel faults", h.fault),
		"tamper":         h.cmd("tamper del-rs VIP:PORT RIP:PORT | del-member SET MEMBER | del-address ADDR | add-vs VIP:PORT SCHED | remark MARK", "change the kernel behind the proxier's back", h.tamper),
		"kernel":         h.cmd("kernel ipvs|ipset|iptables|addresses", "print the fake kernel's state", h.kernel),
		"health":         h.cmd("health", "print the health tracker's status", h.health),
		"errors":         h.cmd("errors NAMESPACE/NAME", "print the errors reported for a Service, one a line", h.errors),
		"metrics":        h.cmd("metrics", "print the metrics' samples", h.dumpMetrics),
		"nft":            h.cmd("nft dump|last|transactions", "the IPv4 nftables table, its last transaction, the transactions since the last ask", h.nft),
		"tamper-nft":     h.cmd("tamper-nft flush-chain NAME | del-element SET KEY... | add-chain NAME | del-table", "change the nftables table behind the proxier's back", h.tamperNFT),
	}
}

// cmd makes a script command of a function whose output goes to stdout.
func (h *scriptHarness) cmd(args, summary string, run func(args ...string) (string, error)) script.Cmd {
	_, rest, _ := strings.Cut(args, " ")
	return script.Command(script.CmdUsage{Summary: summary, Args: rest}, func(_ *script.State, args ...string) (script.WaitFunc, error) {
		out, err := run(args...)
		if err != nil {
			return nil, err
		}
		return func(*script.State) (string, string, error) { return out, "", nil }, nil
	})
}

func (h *scriptHarness) config(args ...string) (string, error) {
	if len(args) != 1 {
		return "", script.ErrUsage
	}
	data, err := os.ReadFile(filepath.Join(h.dir, args[0]))
	if err != nil {
		return "", err
	}
	cfg, _, err := config.Parse(data)
	if err != nil {
		return "", err
	}
	h.cfg = cfg
	if h.p != nil {
		h.p.takeConfig(cfg)
	}
	return "", nil
}

func (h *scriptHarness) apply(args ...string) (string, error) {
	p := h.proxier()
	for _, f := range args {
		objs, err := manifest.ReadFile(filepath.Join(h.dir, f))
		if err != nil {
			return "", err
		}
		if len(objs.Errors) > 0 {
			return "", fmt.Errorf("%s: %v", f, objs.Errors)
		}
		for _, svc := range objs.Services {
			p.UpsertService(svc)
		}
		for _, es := range objs.EndpointSlices {
			p.UpsertSlice(es)
		}
	}
	return "", nil
}

func (h *scriptHarness) delete(args ...string) (string, error) {
	if len(args) != 2 {
		return "", script.ErrUsage
	}
	ns, name, ok := strings.Cut(args[1], "/")
	if !ok {
		return "", script.ErrUsage
	}
	switch args[0] {
	case "service":
		h.proxier().DeleteService(ns, name)
	case "slice":
		h.proxier().DeleteSlice(ns, name)
	default:
		return "", script.ErrUsage
	}
	return "", nil
}

func (h *scriptHarness) node(args ...string) (string, error) {
	if len(args) == 0 {
		return "", script.ErrUsage
	}
	n := NodeInfo{Name: args[0]}
	for _, l := range args[1:] {
		k, v, _ := strings.Cut(l, "=")
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[k] = v
	}
	h.proxier().SetNode(n)
	return "", nil
}

// restart drops the proxier; the next command makes a new one (so that a
// `config` may come first, as a restarted daemon's new configuration).
func (h *scriptHarness) restart(...string) (string, error) {
	h.p = nil
	return "", nil
}

func (h *scriptHarness) step(args ...string) (string, error) {
	if len(args) != 1 {
		return "", script.ErrUsage
	}
	kind := SyncKind(args[0])
	if !slices.Contains([]SyncKind{FullSync, PartialSync, DrainSync}, kind) {
		return "", script.ErrUsage
	}
	st := h.proxier().Step(kind)
	h.last = st
	var b strings.Builder
	fmt.Fprintf(&b, "%s services=%d ops=%d failed=%d failingServices=%d\n", st.Type, st.Services, st.Ops, st.Failed, st.FailingServices)
	for _, op := range st.Planned {
		fmt.Fprintln(&b, op)
	}
	if st.Err != nil {
		for _, e := range unwrapJoined(st.Err) {
			fmt.Fprintf(&b, "error: %v\n", e)
		}
	}
	return b.String(), nil
}

func (h *scriptHarness) expectOps(args ...string) (string, error) {
	want := map[string]int{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			return "", script.ErrUsage
		}
		want[k] = n
	}
	got := map[string]int{}
	for k, n := range h.last.Counts {
		if n > 0 {
			got[k.String()] = n
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return "", fmt.Errorf("the last %s step applied %v, want %v", h.last.Type, got, want)
	}
	return "", nil
}

func (h *scriptHarness) advance(args ...string) (string, error) {
	if len(args) != 1 {
		return "", script.ErrUsage
	}
	d, err := time.ParseDuration(args[0])
	if err != nil {
		return "", err
	}
	h.clock.Step(d)
	return "", nil
}

func (h *scriptHarness) nodeAddresses(args ...string) (string, error) {
	addrs := make([]netip.Addr, 0, len(args))
	for _, a := range args {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return "", err
		}
		addrs = append(addrs, ip)
	}
	h.fk.Link.SetNodeAddresses(addrs...)
	return "", nil
}

func (h *scriptHarness) fault(args ...string) (string, error) {
	if len(args) == 0 {
		return "", script.ErrUsage
	}
	switch args[0] {
	case "rate":
		r, err := strconv.ParseFloat(args[len(args)-1], 64)
		if err != nil || len(args) != 2 {
			return "", script.ErrUsage
		}
		h.inj.SetRate(r)
	case "reads":
		h.inj.SetFailingReads(args[1:]...)
	case "refuse":
		k, err := tcpKey(args[1:])
		if err != nil {
			return "", err
		}
		h.refusing.set(k)
	case "none":
		h.inj.SetRate(0)
		h.inj.SetFailingReads()
		h.refusing.set(vsKeyNone)
	default:
		return "", script.ErrUsage
	}
	return "", nil
}

func (h *scriptHarness) kernel(args ...string) (string, error) {
	if len(args) != 1 {
		return "", script.ErrUsage
	}
	switch args[0] {
	case "ipvs":
		return h.fk.IPVS.Save(), nil
	case "ipset":
		return h.fk.IPSet.Save(), nil
	case "iptables":
		return h.fk.IPTables.Save(4)
	case "addresses":
		_, addrs, err := h.fk.Link.Addresses()
		var b strings.Builder
		for _, a := range addrs {
			fmt.Fprintln(&b, a)
		}
		return b.String(), err
	}
	return "", script.ErrUsage
}

func (h *scriptHarness) health(...string) (string, error) {
	st := h.proxier().Health().Status()
	return fmt.Sprintf("started=%v healthy=%v live=%v error=%q\n", st.Started, st.Healthy, st.Live, st.LastError), nil
}

func (h *scriptHarness) errors(args ...string) (string, error) {
	if len(args) != 1 {
		return "", script.ErrUsage
	}
	var b strings.Builder
	for _, e := range h.reports.get(args[0]) {
		fmt.Fprintln(&b, e)
	}
	return b.String(), nil
}

func (h *scriptHarness) dumpMetrics(...string) (string, error) {
	h.proxier()
	mfs, err := h.metrics.Registry.Gather()
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			return "", err
		}
	}
	var lines []string
	for _, l := range strings.Split(b.String(), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n", nil
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
		if refuse != vsKeyNone && op.VS.Key == refuse {
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
