package state

import "slices"

// RulesBackend says where the sets and rules around IPVS live.
type RulesBackend string

// The rules backends.
const (
	// BackendIPTables: ipsets and iptables chains, named as kube-proxy's ipvs mode names them.
	BackendIPTables RulesBackend = "iptables"
	// BackendNFTables: one nftables table of ipvs-proxy's own per IP family,
	// with nft sets in place of the ipsets.
	BackendNFTables RulesBackend = "nftables"
)

// NFTBase makes a chain a base chain: one attached to a netfilter hook.
type NFTBase struct {
	Type     string // filter, nat
	Hook     string // prerouting, input, forward, output, postrouting
	Priority string // e.g. dstnat, srcnat, filter
}

// NFTRule is a rule of one of ipvs-proxy's nftables chains.
type NFTRule struct {
	// Text is the rule in nft syntax, without its comment. Observed rules
	// have none: nft gives rules back only in a form of its own.
	Text string
	// ID identifies the rule: a digest of Text, kept in the rule's comment,
	// so that a rule read back from the kernel compares with a wanted one.
	ID string
}

// NFTChain is a chain of ipvs-proxy's nftables table with its rules.
type NFTChain struct {
	Name string
	// Base is nil for a regular chain (entered by a jump).
	Base  *NFTBase
	Rules []NFTRule
}

// SameRules reports whether two chains hold the same rules in the same order.
func (c NFTChain) SameRules(o NFTChain) bool {
	return slices.EqualFunc(c.Rules, o.Rules, func(a, b NFTRule) bool { return a.ID == b.ID })
}

// NFTable is ipvs-proxy's nftables table of one family: its chains in
// order. The table's sets are State.Sets of that family; their members are
// the sets' entries, as for ipsets.
type NFTable struct {
	Chains []NFTChain
	// OtherSets are sets and maps (NFTMapPrefix and the name) found in the
	// table that ipvs-proxy does not use (observed only): left by another
	// version, or added by hand.
	OtherSets []string
}

// NFTMapPrefix marks a map among NFTable.OtherSets.
const NFTMapPrefix = "map "

// Chain returns the chain of that name, if the table has it.
func (t NFTable) Chain(name string) (NFTChain, bool) {
	for _, c := range t.Chains {
		if c.Name == name {
			return c, true
		}
	}
	return NFTChain{}, false
}
