package rules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Some of our chain names are also used by other components: kube-proxy's
// iptables mode (KUBE-SERVICES, KUBE-POSTROUTING, KUBE-MARK-MASQ,
// KUBE-FORWARD, KUBE-PROXY-FIREWALL) and older kubelets (KUBE-MARK-MASQ,
// KUBE-POSTROUTING). `ipvs-proxy cleanup` must not delete a chain another
// component still uses. A chain of ours is in use by another component when
// a chain that is neither ours nor built-in jumps to it (kube-proxy's
// KUBE-SVC-* chains jump to KUBE-MARK-MASQ), or when one of its rules jumps
// to such a chain (its KUBE-SERVICES jumps to KUBE-SVC-*).

// shared returns, for each of our chains another component uses, why
// ("table/chain" → reason).
func shared(declared map[[2]string]bool, ours, others map[[2]string][]string) map[string]string {
	out := map[string]string{}
	note := func(table, chain, why string) {
		k := table + "/" + chain
		if _, done := out[k]; !done {
			out[k] = why
		}
	}
	foreignChain := func(table, name string) bool {
		return declared[[2]string{table, name}] && !isOwned(table, name) && !isBuiltin(name)
	}
	for _, from := range sortedChains(others) {
		if isBuiltin(from[1]) {
			continue
		}
		for _, rule := range others[from] {
			if to := jumpTarget(rule); isOwned(from[0], to) {
				note(from[0], to, fmt.Sprintf("chain %s jumps to it", from[1]))
			}
		}
	}
	for _, c := range sortedChains(ours) {
		for _, rule := range ours[c] {
			if to := jumpTarget(rule); foreignChain(c[0], to) {
				note(c[0], c[1], fmt.Sprintf("its rules jump to chain %s", to))
			}
		}
	}
	return out
}

func sortedChains(m map[[2]string][]string) [][2]string {
	out := make([][2]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0]+"/"+a[1], b[0]+"/"+b[1]) })
	return out
}

// WithoutShared returns r without the chains another component uses, nor
// the jumps into them: what cleanup may remove.
func WithoutShared(r state.RuleSet) state.RuleSet {
	out := state.RuleSet{Shared: r.Shared}
	for _, c := range r.Chains {
		if _, sh := r.Shared[c.Table+"/"+c.Name]; !sh {
			out.Chains = append(out.Chains, c)
		}
	}
	for _, j := range r.Jumps {
		if _, sh := r.Shared[j.Table+"/"+jumpTarget(j.Rule)]; !sh {
			out.Jumps = append(out.Jumps, j)
		}
	}
	return out
}
