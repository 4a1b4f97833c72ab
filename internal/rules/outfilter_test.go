package rules_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

func params(f state.Family) rules.Params {
	name := func(b string, f state.Family) string {
		if f == state.IPv6 {
			return strings.Replace(b, "KUBE-", "KUBE-6-", 1)
		}
		return b
	}
	return rules.NewParams(config.Default(), f, nil, name)
}

// apply runs the restore input that turns what the fake holds into want and
// returns what it holds afterwards, as Parse reads it.
func apply(t *testing.T, ipt *fake.IPTables, f state.Family, want state.RuleSet) state.RuleSet {
	t.Helper()
	save, err := ipt.Save(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := ipt.Restore(f, rules.Restore(want, rules.Parse(save))); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if save, err = ipt.Save(f); err != nil {
		t.Fatal(err)
	}
	return rules.Parse(save)
}

// TestNodeOriginatedSourceRanges: traffic the node itself sends to a load
// balancer IP with loadBalancerSourceRanges meets the source ranges before
// IPVS takes it at LOCAL_OUT (kubernetes#119656): a mangle OUTPUT chain,
// one set lookup for every load balancer IP (kube-proxy writes one filter
// OUTPUT rule per IP).
func TestNodeOriginatedSourceRanges(t *testing.T) {
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		rs := rules.Build(params(f))
		set := func(b string) string { return params(f).SetName(b) }
		want := []string{
			"-m set ! --match-set " + set("KUBE-LOAD-BALANCER-FW") + " dst,dst -j RETURN",
			"-m set --match-set " + set("KUBE-LOAD-BALANCER-SOURCE-CIDR") + " dst,dst,src -j RETURN",
			"-m set --match-set " + set("KUBE-LOAD-BALANCER-SOURCE-IP") + " dst,dst,src -j RETURN",
			"-j DROP",
		}
		i := slices.IndexFunc(rs.Chains, func(c state.Chain) bool { return c.Table == "mangle" && c.Name == "KUBE-IPVS-OUT-FILTER" })
		if i < 0 || !slices.Equal(rs.Chains[i].Rules, want) {
			t.Errorf("IPv%d: no mangle chain KUBE-IPVS-OUT-FILTER with %q in %+v", f, want, rs.Chains)
		}
		jump := state.Jump{Table: "mangle", From: "OUTPUT",
			Rule: `-m conntrack --ctstate NEW -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-OUT-FILTER`}
		if !slices.Contains(rs.Jumps, jump) {
			t.Errorf("IPv%d: no jump %+v in %+v", f, jump, rs.Jumps)
		}
		// the mangle table is read back and compared like the others
		if got := apply(t, fake.NewIPTables(), f, rs); !got.Equal(rs) {
			t.Errorf("IPv%d: read back %+v, want %+v", f, got, rs)
		}
	}
}

// TestKubeProxyOutFilterRemoved: kube-proxy's ipvs mode drops such traffic
// with one filter OUTPUT rule per load balancer IP in its own
// KUBE-IPVS-OUT-FILTER chain; a node taken over from it loses that chain and
// its jump (they would keep dropping after the source ranges change).
func TestKubeProxyOutFilterRemoved(t *testing.T) {
	ipt := fake.NewIPTables()
	left := `*filter
:KUBE-IPVS-OUT-FILTER - [0:0]
-A KUBE-IPVS-OUT-FILTER -s 198.51.100.10/32 -m ipvs --vaddr 198.51.100.10/32 --vproto 6 --vport 80 -j DROP
-I OUTPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-OUT-FILTER
COMMIT
`
	if err := ipt.Restore(state.IPv4, left); err != nil {
		t.Fatal(err)
	}
	got := apply(t, ipt, state.IPv4, rules.Build(params(state.IPv4)))
	save, _ := ipt.Save(state.IPv4)
	_, filter, _ := strings.Cut(save, "*filter")
	filter, _, _ = strings.Cut(filter, "COMMIT")
	if strings.Contains(filter, "KUBE-IPVS-OUT-FILTER") {
		t.Errorf("kube-proxy's filter chain KUBE-IPVS-OUT-FILTER or its jump is left:\n%s", filter)
	}
	if !got.Equal(rules.Build(params(state.IPv4))) {
		t.Errorf("rules after the takeover differ from the wanted ones")
	}
}
