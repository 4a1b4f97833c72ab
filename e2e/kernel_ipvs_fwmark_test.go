package e2e

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// TestKernelIPVSFirewallMark: firewall-mark virtual servers (the in-cluster
// virtual servers of externalTrafficPolicy Local Service ports) of both
// families, written with real servers, read back by Dump (their real servers
// come from destination dumps: /proc/net/ip_vs lists them without their
// family) and by ipvsadm in the syntax state renders; an address virtual
// server next to them is unaffected; deleting works by the same key.
func TestKernelIPVSFirewallMark(t *testing.T) {
	framework.ResetKernel(t)
	v := openIPVS(t, ipvs.Config{})
	want := map[state.VSKey]*state.Service{}
	add := func(vs state.VirtualServer, rips ...string) {
		svc := &state.Service{VirtualServer: vs, RealServers: map[state.RSKey]state.RealServer{}}
		for _, r := range rips {
			rs := state.RealServer{Key: state.RSKey{Addr: netip.MustParseAddr(r), Port: 8080}, Weight: 1}
			svc.RealServers[rs.Key] = rs
		}
		want[vs.Key] = svc
	}
	add(state.VirtualServer{Key: state.FWMarkKey(0x1f, state.IPv4), Scheduler: "rr"}, "10.244.1.2", "10.244.2.2")
	add(state.VirtualServer{Key: state.FWMarkKey(0x1f, state.IPv6), Scheduler: "rr"}, "fd00:244::2")
	add(state.VirtualServer{Key: state.FWMarkKey(0x3fff, state.IPv4), Scheduler: "wrr", Flags: state.FlagPersistent, Timeout: 60, PersistenceBits: 24}, "10.244.3.2")
	add(state.VirtualServer{Key: state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr("198.51.100.10"), Port: 80}, Scheduler: "rr", PersistenceBits: 32}, "10.244.1.2")
	ops := addOps(want)
	requireNoErrors(t, "add", ops, v.Exec(ops))

	got, err := v.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if d := sameTable(got, want); len(d) > 0 {
		t.Errorf("Dump differs from what was written:\n%s", strings.Join(d, "\n"))
	}
	saved := framework.IPVSADM(t, "-Sn")
	t.Logf("ipvsadm -Sn:\n%s", saved)
	for _, k := range sortedKeys(want) {
		svc := want[k]
		if !strings.Contains(saved, svc.Ipvsadm()) {
			t.Errorf("ipvsadm -Sn lacks %q", svc.Ipvsadm())
		}
		for _, rs := range svc.SortedRealServers() {
			if line := rs.Ipvsadm(k); !strings.Contains(saved, line) {
				t.Errorf("ipvsadm -Sn lacks %q", line)
			}
		}
	}

	fwm := want[state.FWMarkKey(0x1f, state.IPv4)]
	rs := fwm.SortedRealServers()[0]
	dels := []kernel.IPVSOp{{Cmd: kernel.DelDest, VS: fwm.VirtualServer, RS: rs}, {Cmd: kernel.DelService, VS: want[state.FWMarkKey(0x1f, state.IPv6)].VirtualServer}}
	requireNoErrors(t, "delete", dels, v.Exec(dels))
	dd, err := v.DumpDestinations([]state.VSKey{fwm.Key})
	if err != nil || len(dd[fwm.Key]) != 1 {
		t.Errorf("after deleting one of its two real servers: %v, %v", dd[fwm.Key], err)
	}
	if got, _ := v.Dump(); got[state.FWMarkKey(0x1f, state.IPv6)] != nil || got[fwm.Key] == nil {
		t.Errorf("after deleting the IPv6 one: %v", sortedKeys(got))
	}
}
