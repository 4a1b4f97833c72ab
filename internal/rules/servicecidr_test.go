package rules_test

import (
	"slices"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// TestServiceCIDRDrop: new connections to an address inside the service
// CIDRs that is not local (no Service has it: every ClusterIP is bound on
// kube-ipvs0) are dropped where they would leave the node, forwarded from a
// pod or sent by the node, as kube-proxy's nftables mode does; traffic to a
// Service's ClusterIP has been turned towards its real server by IPVS
// before filter OUTPUT, and never passes FORWARD.
func TestServiceCIDRDrop(t *testing.T) {
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		rs := rules.Build(params(f))
		set := params(f).SetName("KUBE-SERVICE-CIDRS")
		want := []string{"-m set --match-set " + set + " dst -m addrtype ! --dst-type LOCAL -j DROP"}
		i := slices.IndexFunc(rs.Chains, func(c state.Chain) bool { return c.Table == "filter" && c.Name == "KUBE-CLUSTER-IPS-CHECK" })
		if i < 0 || !slices.Equal(rs.Chains[i].Rules, want) {
			t.Errorf("IPv%d: no filter chain KUBE-CLUSTER-IPS-CHECK with %q", f, want)
		}
		for _, from := range []string{"FORWARD", "OUTPUT"} {
			jump := state.Jump{Table: "filter", From: from,
				Rule: `-m conntrack --ctstate NEW -m comment --comment "kubernetes service cidrs" -j KUBE-CLUSTER-IPS-CHECK`}
			if !slices.Contains(rs.Jumps, jump) {
				t.Errorf("IPv%d: no jump from %s", f, from)
			}
		}
		if got := apply(t, fake.NewIPTables(), f, rs); !got.Equal(rs) {
			t.Errorf("IPv%d: read back differs", f)
		}
	}
}
