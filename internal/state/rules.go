package state

import (
	"slices"
	"strings"
)

// Chain is one of ipvs-proxy's own iptables chains with its rules, each rule
// as the arguments that follow `-A CHAIN` in iptables-save output.
type Chain struct {
	Table string
	Name  string
	Rules []string
}

// Jump is a rule in a built-in chain that enters one of ipvs-proxy's chains,
// e.g. nat PREROUTING `-m comment --comment "kubernetes service portals" -j KUBE-SERVICES`.
type Jump struct {
	Table string
	From  string
	Rule  string
}

// RuleSet is the iptables part of the state for one IP family.
type RuleSet struct {
	Chains []Chain
	Jumps  []Jump
	// Shared are our chains another component still uses ("nat/KUBE-MARK-MASQ"
	// → why), as read from the kernel: cleanup leaves them. Not compared by Equal.
	Shared map[string]string
}

// Equal reports whether two rule sets hold the same chains with the same
// rules in the same order, and the same jumps in any order.
func (r RuleSet) Equal(o RuleSet) bool {
	return slices.EqualFunc(r.Chains, o.Chains, func(a, b Chain) bool {
		return a.Table == b.Table && a.Name == b.Name && slices.Equal(a.Rules, b.Rules)
	}) && slices.Equal(r.SortedJumps(), o.SortedJumps())
}

// SortedJumps returns the jumps ordered by table, chain and rule.
func (r RuleSet) SortedJumps() []Jump {
	out := slices.Clone(r.Jumps)
	slices.SortFunc(out, func(a, b Jump) int {
		return strings.Compare(a.Table+" "+a.From+" "+a.Rule, b.Table+" "+b.From+" "+b.Rule)
	})
	return out
}
