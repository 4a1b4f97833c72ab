package e2e

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// netlinkDump reads the table the slow way, as Dump did before it read real
// servers from /proc/net/ip_vs: one destination dump per service.
func netlinkDump(t testing.TB, v *ipvs.IPVS, keys []state.VSKey) map[state.VSKey]*state.Service {
	t.Helper()
	dests, err := v.DumpDestinations(keys)
	if err != nil {
		t.Fatal(err)
	}
	out := map[state.VSKey]*state.Service{}
	for _, k := range keys {
		out[k] = &state.Service{VirtualServer: state.VirtualServer{Key: k}, RealServers: dests[k]}
	}
	return out
}

// dumpTable is ipvsTable with real servers of every forwarding method and
// weight 0 among them.
func dumpTable(services, dests int) map[state.VSKey]*state.Service {
	table := ipvsTable(services, dests)
	i := 0
	for _, svc := range table {
		for rk, rs := range svc.RealServers {
			switch i % 7 {
			case 1:
				rs.Forward = 3 // direct routing
			case 2:
				rs.Forward = 2 // tunnel
			case 3:
				rs.Weight = 0
			}
			svc.RealServers[rk] = rs
			i++
		}
	}
	return table
}

// TestKernelIPVSDumpProc checks that Dump, which takes real servers from
// /proc/net/ip_vs, reads exactly what was written and what per-service
// netlink dumps read: IPv4 and IPv6, every protocol, forwarding methods,
// weights, persistence; a firewall-mark service is read too (its real
// servers by a destination dump: the listing does not give its family), and
// another program's services are read or skipped as before.
func TestKernelIPVSDumpProc(t *testing.T) {
	framework.ResetKernel(t)
	v := openIPVS(t, ipvs.Config{})
	want := dumpTable(300, 6)
	requireNoErrors(t, "add", nil, v.Exec(addOps(want)))
	// A firewall-mark service with a real server, made by ipvsadm.
	framework.IPVSADM(t, "-A", "-f", "7", "-s", "rr")
	framework.IPVSADM(t, "-a", "-f", "7", "-r", "10.250.1.1:0", "-m")
	fwm := &state.Service{VirtualServer: state.VirtualServer{Key: state.FWMarkKey(7, state.IPv4), Scheduler: "rr", PersistenceBits: 32},
		RealServers: map[state.RSKey]state.RealServer{}}
	rs := state.RealServer{Key: state.RSKey{Addr: netip.MustParseAddr("10.250.1.1")}, Weight: 1}
	fwm.RealServers[rs.Key] = rs
	want[fwm.Key] = fwm

	start := time.Now()
	got, err := v.Dump()
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if d := sameTable(got, want); len(d) > 0 {
		t.Fatalf("Dump differs from what was written (%d differences):\n%s", len(d), strings.Join(d[:min(len(d), 10)], "\n"))
	}
	start = time.Now()
	ref := netlinkDump(t, v, sortedKeys(want))
	t.Logf("Dump of %d services: %s; per-service netlink dumps: %s", len(want), took, time.Since(start))
	for k, svc := range got {
		for rk, rs := range svc.RealServers {
			r := ref[k].RealServers[rk]
			// Connection counts too: the whole value must be equal.
			if rs != r {
				t.Errorf("%s %s: Dump %+v, netlink %+v", k, rk, rs, r)
			}
		}
		if len(svc.RealServers) != len(ref[k].RealServers) {
			t.Errorf("%s: Dump has %d real servers, netlink %d", k, len(svc.RealServers), len(ref[k].RealServers))
		}
	}

	// Changes show in the next Dump: the listing is read afresh each time.
	k := sortedKeys(want)[0]
	vs := want[k].VirtualServer
	extra := state.RealServer{Key: state.RSKey{Addr: netip.MustParseAddr("10.250.2.2"), Port: 81}, Weight: 3}
	if k.Addr.Is6() {
		extra.Key.Addr = netip.MustParseAddr("fd00:1::2")
	}
	requireNoErrors(t, "add", nil, v.Exec([]kernel.IPVSOp{{Cmd: kernel.AddDest, VS: vs, RS: extra}}))
	got, err = v.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if rs, ok := got[k].RealServers[extra.Key]; !ok || rs.Weight != 3 {
		t.Errorf("the added real server is not in the next Dump: %+v", got[k].RealServers)
	}
}

// TestKernelIPVSDumpNamespaced checks that Dump reads the listing of the
// namespace it programs (Config.NetNSPath), not the caller's.
func TestKernelIPVSDumpNamespaced(t *testing.T) {
	framework.ResetKernel(t)
	framework.NewClientNS(t, "kdump", "10.250.0.10")
	path := "/run/netns/kdump"
	if _, err := os.Stat(path); err != nil {
		path = "/var/run/netns/kdump"
	}
	root := openIPVS(t, ipvs.Config{})
	inNS := openIPVS(t, ipvs.Config{NetNSPath: path})
	rootTable, nsTable := dumpTable(20, 3), dumpTable(40, 2)
	// The same virtual servers in both namespaces, with other real servers.
	for k, svc := range nsTable {
		if r := rootTable[k]; r != nil {
			svc.RealServers = map[state.RSKey]state.RealServer{}
			for rk, rs := range r.RealServers {
				rk.Port++
				rs.Key = rk
				svc.RealServers[rk] = rs
			}
		}
	}
	requireNoErrors(t, "add in the root namespace", nil, root.Exec(addOps(rootTable)))
	requireNoErrors(t, "add in the namespace", nil, inNS.Exec(addOps(nsTable)))
	for name, c := range map[string]struct {
		v    *ipvs.IPVS
		want map[state.VSKey]*state.Service
	}{"root": {root, rootTable}, "namespace": {inNS, nsTable}} {
		got, err := c.v.Dump()
		if err != nil {
			t.Fatal(err)
		}
		if d := sameTable(got, c.want); len(d) > 0 {
			t.Errorf("%s: Dump differs (%d differences):\n%s", name, len(d), strings.Join(d[:min(len(d), 10)], "\n"))
		}
	}
}
