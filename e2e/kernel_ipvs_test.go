package e2e

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/sysctl"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"golang.org/x/sys/unix"
)

// openIPVS opens the real IPVS implementation on the guest's table.
func openIPVS(t testing.TB, cfg ipvs.Config) *ipvs.IPVS {
	t.Helper()
	v := ipvs.New(cfg)
	if err := v.Open(); err != nil {
		t.Fatalf("open IPVS: %v", err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// ipvsTable builds services virtual servers with dests real servers each:
// IPv4 and IPv6, TCP, UDP and SCTP, several schedulers with their flags, and
// some persistent ones with a wider netmask.
func ipvsTable(services, dests int) map[state.VSKey]*state.Service {
	scheds := []struct {
		name  string
		flags uint32
	}{{"rr", 0}, {"wrr", 0}, {"lc", 0}, {"sh", state.FlagSched1 | state.FlagSched2}, {"mh", state.FlagSched1}, {"wlc", state.FlagOnePacket}}
	protos := []state.Protocol{state.TCP, state.UDP, state.SCTP}
	out := map[state.VSKey]*state.Service{}
	for i := range services {
		v6 := i%4 == 3
		addr := netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
		if v6 {
			addr = netip.AddrFrom16([16]byte{0xfd, 0, 14: byte(i >> 8), 15: byte(i)})
		}
		s := scheds[i%len(scheds)]
		vs := state.VirtualServer{
			Key:             state.VSKey{Proto: protos[i%len(protos)], Addr: addr, Port: uint16(80 + i%7)},
			Scheduler:       s.name,
			Flags:           s.flags,
			PersistenceBits: addr.BitLen(),
		}
		if i%10 == 0 {
			vs.Flags |= state.FlagPersistent
			vs.Timeout = 10800
			vs.PersistenceBits = map[bool]int{false: 24, true: 64}[v6]
		}
		svc := &state.Service{VirtualServer: vs, RealServers: map[state.RSKey]state.RealServer{}}
		for j := range dests {
			rip := netip.AddrFrom4([4]byte{10, 244, byte(i), byte(j + 1)})
			if v6 {
				rip = netip.AddrFrom16([16]byte{0: 0xfd, 3: 1, 13: byte(i >> 8), 14: byte(i), 15: byte(j + 1)})
			}
			rs := state.RealServer{Key: state.RSKey{Addr: rip, Port: 8080}, Weight: int32(j + 1)}
			svc.RealServers[rs.Key] = rs
		}
		out[vs.Key] = svc
	}
	return out
}

// addOps lists the writes that create table: each service, then its dests.
func addOps(table map[state.VSKey]*state.Service) []kernel.IPVSOp {
	var ops []kernel.IPVSOp
	for _, k := range sortedKeys(table) {
		svc := table[k]
		ops = append(ops, kernel.IPVSOp{Cmd: kernel.AddService, VS: svc.VirtualServer})
		for _, rs := range svc.SortedRealServers() {
			ops = append(ops, kernel.IPVSOp{Cmd: kernel.AddDest, VS: svc.VirtualServer, RS: rs})
		}
	}
	return ops
}

func sortedKeys(table map[state.VSKey]*state.Service) []state.VSKey {
	s := &state.State{Services: table}
	return s.SortedServices()
}

// sameTable reports the differences between a dump and what was written.
func sameTable(got, want map[state.VSKey]*state.Service) []string {
	var diffs []string
	for k, w := range want {
		g := got[k]
		if g == nil {
			diffs = append(diffs, "missing "+k.String())
			continue
		}
		if !g.SameConfig(w.VirtualServer) {
			diffs = append(diffs, fmt.Sprintf("%s: got %+v, want %+v", k, g.VirtualServer, w.VirtualServer))
		}
		if len(g.RealServers) != len(w.RealServers) {
			diffs = append(diffs, fmt.Sprintf("%s: %d real servers, want %d", k, len(g.RealServers), len(w.RealServers)))
		}
		for rk, wr := range w.RealServers {
			if gr, ok := g.RealServers[rk]; !ok || !gr.SameConfig(wr) {
				diffs = append(diffs, fmt.Sprintf("%s: real server %s: got %+v, want %+v", k, rk, gr, wr))
			}
		}
	}
	for k := range got {
		if want[k] == nil {
			diffs = append(diffs, "unexpected "+k.String())
		}
	}
	return diffs
}

func requireNoErrors(t testing.TB, what string, ops []kernel.IPVSOp, errs []error) {
	t.Helper()
	n := 0
	for i, err := range errs {
		if err != nil {
			if n++; n <= 5 {
				t.Errorf("%s: op %d (%d %s %s): %v", what, i, ops[i].Cmd, ops[i].VS.Key, ops[i].RS.Key, err)
			}
		}
	}
	if n > 0 {
		t.Fatalf("%s: %d of %d ops failed", what, n, len(ops))
	}
}

// TestKernelIPVSBatch writes ~2,000 ops in one pipelined Exec and reads them
// back with Dump, with ipvsadm and with moby/ipvs.
func TestKernelIPVSBatch(t *testing.T) {
	framework.ResetKernel(t)
	v := openIPVS(t, ipvs.Config{})
	want := ipvsTable(200, 9)
	ops := addOps(want)
	start := time.Now()
	requireNoErrors(t, "add", ops, v.Exec(ops))
	t.Logf("%d ops in %s", len(ops), time.Since(start))

	got, err := v.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if d := sameTable(got, want); len(d) > 0 {
		t.Errorf("Dump differs from what was written (%d differences):\n%s", len(d), strings.Join(d[:min(len(d), 10)], "\n"))
	}

	// ipvsadm reads the same table.
	saved := framework.IPVSADM(t, "-Sn")
	if n := len(strings.Split(strings.TrimSpace(saved), "\n")); n != len(ops) {
		t.Errorf("ipvsadm -Sn has %d lines, want %d", n, len(ops))
	}
	sample := want[sortedKeys(want)[0]]
	if !strings.Contains(saved, sample.Ipvsadm()) {
		t.Errorf("ipvsadm -Sn lacks %q:\n%s", sample.Ipvsadm(), firstLines(saved, 20))
	}

	// DumpDestinations of a few, including one that does not exist.
	keys := sortedKeys(want)[:3]
	gone := state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr("10.99.99.99"), Port: 1}
	dd, err := v.DumpDestinations(append(keys, gone))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if len(dd[k]) != 9 {
			t.Errorf("DumpDestinations[%s] has %d, want 9", k, len(dd[k]))
		}
	}
	if len(dd[gone]) != 0 {
		t.Errorf("DumpDestinations of a missing service: %v", dd[gone])
	}

	// Delete everything in one batch: dests first, then services.
	var dels []kernel.IPVSOp
	for _, op := range ops {
		if op.Cmd == kernel.AddDest {
			dels = append(dels, kernel.IPVSOp{Cmd: kernel.DelDest, VS: op.VS, RS: op.RS})
		}
	}
	for _, k := range sortedKeys(want) {
		dels = append(dels, kernel.IPVSOp{Cmd: kernel.DelService, VS: want[k].VirtualServer})
	}
	requireNoErrors(t, "delete", dels, v.Exec(dels))
	if got, err := v.Dump(); err != nil || len(got) != 0 {
		t.Errorf("after deleting everything: %d services, %v", len(got), err)
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// TestKernelIPVSPartialFailure checks that each op in a batch gets its own
// error, exactly as the kernel.IPVSCmd contracts say, and that the ops around
// a failure are applied.
func TestKernelIPVSPartialFailure(t *testing.T) {
	framework.ResetKernel(t)
	v := openIPVS(t, ipvs.Config{})
	vsA := state.VirtualServer{Key: state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr("10.96.0.1"), Port: 80}, Scheduler: "rr"}
	missing := state.VirtualServer{Key: state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr("10.96.0.2"), Port: 80}, Scheduler: "rr"}
	rs := func(last byte) state.RealServer {
		return state.RealServer{Key: state.RSKey{Addr: netip.AddrFrom4([4]byte{10, 244, 0, last}), Port: 80}, Weight: 1}
	}
	ops := []kernel.IPVSOp{
		{Cmd: kernel.AddService, VS: vsA},
		{Cmd: kernel.AddDest, VS: vsA, RS: rs(1)},
		{Cmd: kernel.AddDest, VS: missing, RS: rs(2)}, // ESRCH
		{Cmd: kernel.AddDest, VS: vsA, RS: rs(3)},
		{Cmd: kernel.AddService, VS: vsA},          // EEXIST
		{Cmd: kernel.AddDest, VS: vsA, RS: rs(1)},  // EEXIST
		{Cmd: kernel.DelDest, VS: vsA, RS: rs(9)},  // ENOENT
		{Cmd: kernel.EditDest, VS: vsA, RS: rs(9)}, // ENOENT
		{Cmd: kernel.DelDest, VS: missing, RS: rs(1)},
		{Cmd: kernel.DelService, VS: missing},
		{Cmd: kernel.EditService, VS: missing},
		{Cmd: kernel.AddDest, VS: vsA, RS: rs(4)},
	}
	want := []error{nil, nil, unix.ESRCH, nil, unix.EEXIST, unix.EEXIST, unix.ENOENT, unix.ENOENT, unix.ESRCH, unix.ESRCH, unix.ESRCH, nil}
	errs := v.Exec(ops)
	for i, err := range errs {
		if (want[i] == nil) != (err == nil) || (want[i] != nil && !errors.Is(err, want[i])) {
			t.Errorf("op %d (cmd %d): %v, want %v", i, ops[i].Cmd, err, want[i])
		}
	}
	t.Logf("errors as returned: %v", errs)
	got, err := v.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if svc := got[vsA.Key]; svc == nil || len(svc.RealServers) != 3 {
		t.Errorf("after the batch: %+v, want %s with 3 real servers", got, vsA.Key)
	}
}

// TestKernelIPVSEditInPlace changes a virtual server's scheduler, flags and
// persistence without touching its real servers.
func TestKernelIPVSEditInPlace(t *testing.T) {
	framework.ResetKernel(t)
	v := openIPVS(t, ipvs.Config{})
	vs := state.VirtualServer{Key: state.VSKey{Proto: state.UDP, Addr: netip.MustParseAddr("fd00::53"), Port: 53}, Scheduler: "rr", PersistenceBits: 128}
	rs := state.RealServer{Key: state.RSKey{Addr: netip.MustParseAddr("fd00:1::7"), Port: 53}, Weight: 1}
	requireNoErrors(t, "add", nil, v.Exec([]kernel.IPVSOp{{Cmd: kernel.AddService, VS: vs}, {Cmd: kernel.AddDest, VS: vs, RS: rs}}))

	for _, edit := range []state.VirtualServer{
		{Key: vs.Key, Scheduler: "sh", Flags: state.FlagSched1 | state.FlagSched2, PersistenceBits: 128},
		{Key: vs.Key, Scheduler: "wlc", Flags: state.FlagPersistent, Timeout: 600, PersistenceBits: 64},
		{Key: vs.Key, Scheduler: "rr", PersistenceBits: 128},
	} {
		requireNoErrors(t, "edit", nil, v.Exec([]kernel.IPVSOp{{Cmd: kernel.EditService, VS: edit}}))
		got, err := v.Dump()
		if err != nil {
			t.Fatal(err)
		}
		svc := got[vs.Key]
		if svc == nil || !svc.SameConfig(edit) || len(svc.RealServers) != 1 {
			t.Errorf("after edit to %+v: %+v", edit, svc)
		}
	}
	// Weight edits.
	rs.Weight = 0
	requireNoErrors(t, "edit dest", nil, v.Exec([]kernel.IPVSOp{{Cmd: kernel.EditDest, VS: vs, RS: rs}}))
	got, _ := v.Dump()
	if r := got[vs.Key].RealServers[rs.Key]; r.Weight != 0 {
		t.Errorf("weight after edit: %d", r.Weight)
	}
	t.Log(framework.IPVSADM(t, "-Sn"))
}

// TestKernelIPVSSchedulerMissing: a scheduler without a module is reported
// with the module to load.
func TestKernelIPVSSchedulerMissing(t *testing.T) {
	framework.ResetKernel(t)
	v := openIPVS(t, ipvs.Config{})
	vs := state.VirtualServer{Key: state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr("10.96.0.1"), Port: 80}, Scheduler: "nosuch"}
	err := v.Exec([]kernel.IPVSOp{{Cmd: kernel.AddService, VS: vs}})[0]
	if !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "modprobe ip_vs_nosuch") {
		t.Errorf("add with a missing scheduler: %v", err)
	}
	t.Log(err)
}

// TestKernelIPVSTimeouts sets one timeout and leaves the others.
func TestKernelIPVSTimeouts(t *testing.T) {
	framework.ResetKernel(t)
	v := openIPVS(t, ipvs.Config{})
	before, err := v.Timeouts()
	if err != nil {
		t.Fatal(err)
	}
	want := state.Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}
	if before != want {
		t.Errorf("Timeouts = %+v, want the reset values %+v", before, want)
	}
	if err := v.SetTimeouts(state.Timeouts{TCPFin: 30 * time.Second, UDP: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	after, err := v.Timeouts()
	want = state.Timeouts{TCP: 900 * time.Second, TCPFin: 30 * time.Second, UDP: 2 * time.Second}
	if err != nil || after != want {
		t.Errorf("after SetTimeouts: %+v, %v; want %+v", after, err, want)
	}
	if out := framework.IPVSADM(t, "-L", "--timeout"); !strings.Contains(out, "900 30 2") {
		t.Errorf("ipvsadm -L --timeout: %s", out)
	}
}

// TestKernelSysctlIPVS: the net/ipv4/vs parameters exist once IPVS is in use.
func TestKernelSysctlIPVS(t *testing.T) {
	framework.ResetKernel(t)
	openIPVS(t, ipvs.Config{})
	s := sysctl.New(sysctl.Config{})
	if err := s.Set("net/ipv4/vs/conntrack", "1"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get("net/ipv4/vs/conntrack"); err != nil || v != "1" {
		t.Errorf("Get = %q, %v", v, err)
	}
}
