//go:build linux && privileged

package nftables_test

import (
	"net/netip"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/apply"
	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nftables"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch/nstest"
	"github.com/ipvs-proxy/ipvs-proxy/internal/plan"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

func TestMain(m *testing.M) { nstest.Main(m) }

// withNFT is a kernel whose nftables part is nft (real or fake) and whose
// other parts are fakes: these tests are about the tables.
func withNFT(n kernel.NFTables) kernel.Kernel {
	k := fake.New().Interfaces()
	k.NFTables = n
	return k
}

// want is the desired state of a dual-stack node with a member in every
// kind of set, nested source ranges included.
func want(t *testing.T, cfg *config.Config) *state.State {
	t.Helper()
	a := netip.MustParseAddr
	in := desired.NewInput(cfg, desired.Node{Name: "n", Addresses: []netip.Addr{a("10.0.0.1"), a("fd00::1")}})
	s := desired.Base(in)
	member := func(base string, f state.Family, e state.SetEntry) {
		set := s.Sets[desired.SetName(base, f)]
		if set == nil {
			t.Fatalf("no set %s", desired.SetName(base, f))
		}
		set.Entries[e] = struct{}{}
	}
	for _, fam := range []struct {
		f          state.Family
		vip, ep, n string
		wide       netip.Prefix
	}{{state.IPv4, "10.96.0.10", "10.244.0.5", "10.0.0.1", netip.MustParsePrefix("192.168.0.0/16")},
		{state.IPv6, "fd00:96::10", "fd00:244::5", "fd00::1", netip.MustParsePrefix("fd00:1::/64")}} {
		vip, ep, node := a(fam.vip), a(fam.ep), a(fam.n)
		f := fam.f
		member(desired.SetClusterIP, f, state.SetEntry{Addr: vip, Proto: state.TCP, Port: 80})
		member(desired.SetClusterIP, f, state.SetEntry{Addr: vip, Proto: state.UDP, Port: 53})
		member(desired.SetClusterIP, f, state.SetEntry{Addr: vip, Proto: state.SCTP, Port: 9})
		member(desired.SetIPVSIPs, f, state.SetEntry{Addr: vip})
		member(desired.SetLoopBack, f, state.SetEntry{Addr: ep, Proto: state.TCP, Port: 8080, Addr2: ep})
		member(desired.SetNodePortTCP, f, state.SetEntry{Port: 30080})
		member(desired.SetNodePortLocalUDP, f, state.SetEntry{Port: 30053})
		member(desired.SetNodePortSCTP, f, state.SetEntry{Addr: node, Proto: state.SCTP, Port: 30009})
		member(desired.SetLoadBalancerFW, f, state.SetEntry{Addr: vip, Proto: state.TCP, Port: 443})
		member(desired.SetLoadBalancerSrcCIDR, f, state.SetEntry{Addr: vip, Proto: state.TCP, Port: 443, Net: fam.wide})
		member(desired.SetLoadBalancerSrcCIDR, f, state.SetEntry{Addr: vip, Proto: state.TCP, Port: 443, Net: state.HostPrefix(node)})
		member(desired.SetLoadBalancerSourceIP, f, state.SetEntry{Addr: vip, Proto: state.TCP, Port: 443, Addr2: vip})
		member(desired.SetHealthCheckNodePort, f, state.SetEntry{Port: 31000})
		member(desired.SetServiceCIDRs, f, state.SetEntry{Net: netip.PrefixFrom(vip, 16).Masked()})
		member(desired.SetExternalLocalMarks, f, state.SetEntry{Addr: node, Proto: state.TCP, Port: 30080, Mark: 3, MarkMask: 0x3fff})
	}
	return s
}

func nftConfig() *config.Config {
	cfg := config.Default()
	cfg.RulesBackend = state.BackendNFTables
	cfg.ClusterCIDRs = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:244::/48")}
	return cfg
}

// sync plans and applies want against k, failing the test on any error,
// and returns the plan.
func sync(t *testing.T, k kernel.Kernel, w *state.State) *plan.Plan {
	t.Helper()
	have, err := apply.Observe(k, w, false)
	if err != nil {
		t.Fatal(err)
	}
	p := plan.Diff(w, have, plan.Options{Backend: state.BackendNFTables, ConnsKnown: true})
	if res := apply.New(k).Apply(p); res.Failed() > 0 {
		t.Fatalf("apply: %v", res.Errors)
	}
	return p
}

func nftOps(p *plan.Plan) []string {
	var out []string
	for _, o := range p.Ops {
		if o.Kind.Subsystem() == plan.SubNFTables {
			out = append(out, o.String())
		}
	}
	return out
}

func nftCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("nft", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPrivilegedTableRoundTrip(t *testing.T) {
	real, err := nftables.Open()
	if err != nil {
		t.Fatal(err)
	}
	k, fk := withNFT(real), withNFT(fake.NewNFTables())
	w := want(t, nftConfig())
	p, pf := sync(t, k, w), sync(t, fk, w)
	if got, gotFake := nftOps(p), nftOps(pf); !reflect.DeepEqual(got, gotFake) || len(got) == 0 {
		t.Fatalf("cold start: kernel plan %q, fake plan %q", got, gotFake)
	}
	listing := nftCmd(t, "list", "table", "ip", "ipvs-proxy")
	for _, s := range []string{"masquerade fully-random", "10.96.0.10 . tcp . 443 . 192.168.0.0/16", "type nat hook prerouting priority dstnat"} {
		if !strings.Contains(listing, s) {
			t.Errorf("nft list table lacks %q:\n%s", s, listing)
		}
	}

	// read back, the kernel and the fake agree, and nothing is left to do
	for _, kk := range []kernel.Kernel{k, fk} {
		if p := sync(t, kk, w); len(nftOps(p)) > 0 {
			t.Fatalf("second sync planned %q", nftOps(p))
		}
	}
	have, _ := apply.Observe(k, w, false)
	haveFake, _ := apply.Observe(fk, w, false)
	if !reflect.DeepEqual(have.Sets, haveFake.Sets) || !reflect.DeepEqual(have.Tables, haveFake.Tables) {
		t.Errorf("the kernel and knftables' fake read back differently:\n%+v\n%+v", have.Tables, haveFake.Tables)
	}

	// drift: exactly the repairing operations
	nftCmd(t, "flush", "chain", "ip", "ipvs-proxy", "postrouting")
	nftCmd(t, "delete", "element", "ip6", "ipvs-proxy", "cluster-ip", "{ fd00:96::10 . udp . 53 }")
	nftCmd(t, "add", "chain", "ip", "ipvs-proxy", "stale")
	nftCmd(t, "add", "set", "ip", "ipvs-proxy", "stale-set", "{ type ipv4_addr; }")
	got := nftOps(sync(t, k, w))
	wantOps := []string{"nft-sync-chain ip postrouting", "nft-add-element ip6 KUBE-6-CLUSTER-IP fd00:96::10,udp:53", "nft-delete-chain ip stale", "nft-delete-set ip stale-set"}
	if !reflect.DeepEqual(got, wantOps) {
		t.Errorf("repair: %q, want %q", got, wantOps)
	}

	// a member goes, one that is already gone too (believed present): one transaction succeeds
	gone := state.SetEntry{Addr: netip.MustParseAddr("10.96.0.10"), Proto: state.TCP, Port: 80}
	nftCmd(t, "delete", "element", "ip", "ipvs-proxy", "ipvs-ips", "{ 10.96.0.10 }")
	have, _ = apply.Observe(k, w, false)
	delete(w.Sets[desired.SetClusterIP].Entries, gone)
	delete(w.Sets[desired.SetIPVSIPs].Entries, state.SetEntry{Addr: netip.MustParseAddr("10.96.0.10")})
	have.Sets[desired.SetIPVSIPs].Entries[state.SetEntry{Addr: netip.MustParseAddr("10.96.0.10")}] = struct{}{}
	p = plan.Diff(w, have, plan.Options{Backend: state.BackendNFTables, ConnsKnown: true})
	if res := apply.New(k).Apply(p); res.Failed() > 0 {
		t.Fatalf("deleting members (one already gone): %v", res.Errors)
	}
	if strings.Contains(nftCmd(t, "list", "set", "ip", "ipvs-proxy", "cluster-ip"), "10.96.0.10 . tcp . 80") {
		t.Error("deleted member still there")
	}

	// cleanup removes both tables and nothing else
	nftCmd(t, "add", "table", "ip", "other")
	have, _ = apply.Observe(k, state.New(), true)
	cp := plan.Diff(state.New(), have, plan.Options{Cleanup: true})
	if res := apply.New(k).Apply(cp); res.Failed() > 0 {
		t.Fatal(res.Errors)
	}
	tables := nftCmd(t, "list", "tables")
	if strings.Contains(tables, "ipvs-proxy") || !strings.Contains(tables, "table ip other") {
		t.Errorf("after cleanup: %s", tables)
	}
}
