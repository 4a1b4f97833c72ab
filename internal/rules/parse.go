package rules

import (
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// owned lists our chains per table in canonical order.
var owned = []struct{ table, chain string }{
	{TableNAT, ChainServices}, {TableNAT, ChainPostrouting}, {TableNAT, ChainNodePort},
	{TableNAT, ChainLoadBalancer}, {TableNAT, ChainMarkMasq},
	{TableFilter, ChainForward}, {TableFilter, ChainNodePort}, {TableFilter, ChainFirewall},
	{TableFilter, ChainSourceRanges}, {TableFilter, ChainIPVSFilter}, {TableFilter, ChainClusterIPsCheck},
	{TableMangle, ChainOutFilter}, {TableMangle, ChainMarkInCluster},
}

// Tables lists the tables ipvs-proxy writes, in the order it writes them.
var Tables = []string{TableNAT, TableFilter, TableMangle}

func isOwned(table, chain string) bool {
	for _, o := range append(owned, legacyChains...) {
		if o.table == table && o.chain == chain {
			return true
		}
	}
	return false
}

// Parse extracts from iptables-save output our chains (in canonical order)
// and the rules of built-in chains that jump to them. Other chains are
// ignored, but for telling which of our chains another component still
// uses (RuleSet.Shared; see shared).
func Parse(save string) state.RuleSet {
	var table string
	declared := map[[2]string]bool{}
	rules := map[[2]string][]string{}
	others := map[[2]string][]string{} // rules of chains that are not ours
	var jumps []state.Jump
	for _, line := range strings.Split(save, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			declared[[2]string{table, name}] = true
		case strings.HasPrefix(line, "-A "):
			chain, rule, _ := strings.Cut(line[3:], " ")
			if isOwned(table, chain) {
				rules[[2]string{table, chain}] = append(rules[[2]string{table, chain}], rule)
				continue
			}
			others[[2]string{table, chain}] = append(others[[2]string{table, chain}], rule)
			if target := jumpTarget(rule); target != "" && isOwned(table, target) && isBuiltin(chain) {
				jumps = append(jumps, state.Jump{Table: table, From: chain, Rule: rule})
			}
		}
	}
	var rs state.RuleSet
	for _, o := range append(owned, legacyChains...) {
		k := [2]string{o.table, o.chain}
		if declared[k] {
			rs.Chains = append(rs.Chains, state.Chain{Table: o.table, Name: o.chain, Rules: rules[k]})
		}
	}
	rs.Jumps = jumps
	rs.Shared = shared(declared, rules, others)
	return rs
}

func jumpTarget(rule string) string {
	f := strings.Fields(rule)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" || f[i] == "-g" {
			return f[i+1]
		}
	}
	return ""
}

func isBuiltin(chain string) bool {
	switch chain {
	case "PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING":
		return true
	}
	return false
}
