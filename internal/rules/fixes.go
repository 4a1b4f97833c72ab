package rules

import "github.com/ipvs-proxy/ipvs-proxy/internal/state"

// The rules ipvs-proxy adds to kube-proxy's ipvs-mode rule set, each fixing a
// Service semantic that ipvs mode gets wrong. They are described here, in one
// place, with why each exists, so that another rules backend (nftables) can
// carry the same meaning. Like the rest, none grows with the number of
// Services: every per-Service decision is a set lookup.
//
// Node-originated traffic and loadBalancerSourceRanges (kubernetes#119656):
//
//	mangle OUTPUT -m conntrack --ctstate NEW -j KUBE-IPVS-OUT-FILTER
//	mangle KUBE-IPVS-OUT-FILTER:
//	  -m set ! --match-set KUBE-LOAD-BALANCER-FW dst,dst -j RETURN
//	  -m set --match-set KUBE-LOAD-BALANCER-SOURCE-CIDR dst,dst,src -j RETURN
//	  -m set --match-set KUBE-LOAD-BALANCER-SOURCE-IP dst,dst,src -j RETURN
//	  -j DROP
//
// The source-range firewall (KUBE-PROXY-FIREWALL) sits in filter INPUT and
// FORWARD, but IPVS takes the node's own connections at LOCAL_OUT and sends
// them straight to the real server: the node reached a source-restricted
// load balancer IP whatever its ranges said. kube-proxy fixed it with one
// filter OUTPUT rule per load balancer IP matching IPVS's connection
// (`-m ipvs --vaddr`, after IPVS has rewritten the destination). Here the
// check runs in mangle OUTPUT, which comes before IPVS (priority -150
// against IPVS's -99), so the destination is still the load balancer IP and
// the same sets as the INPUT firewall decide: a node address inside the
// ranges is let through by KUBE-LOAD-BALANCER-SOURCE-IP, as there. Only
// the first packet of a connection is checked.
//
// kube-proxy's own filter KUBE-IPVS-OUT-FILTER chain, left on a node taken
// over from it, is removed with its jump (see legacyChains): its per-IP rules
// would keep dropping after the ranges change.
const ChainOutFilter = "KUBE-IPVS-OUT-FILTER"

// Traffic to unallocated ClusterIPs (kube-proxy's nftables mode does the same):
//
//	filter FORWARD -m conntrack --ctstate NEW -j KUBE-CLUSTER-IPS-CHECK
//	filter OUTPUT  -m conntrack --ctstate NEW -j KUBE-CLUSTER-IPS-CHECK
//	filter KUBE-CLUSTER-IPS-CHECK:
//	  -m set --match-set KUBE-SERVICE-CIDRS dst -m addrtype ! --dst-type LOCAL -j DROP
//
// KUBE-SERVICE-CIDRS holds the CIDRs of the cluster's ServiceCIDR objects.
// Every ClusterIP a Service has is bound on kube-ipvs0, so an address inside
// the service CIDRs that is not local belongs to no Service: without this,
// a connection to it from a pod or from the node followed the node's routes
// (the default route, off the node). A Service's traffic never meets the
// rule: IPVS has turned it towards a real server before filter OUTPUT (and
// it never passes FORWARD); a ClusterIP without a virtual server for the
// port stays local and is refused by KUBE-IPVS-FILTER, as before.
const ChainClusterIPsCheck = "KUBE-CLUSTER-IPS-CHECK"

// clusterIPsCheck returns the drop of traffic to unallocated ClusterIPs.
func clusterIPsCheck(set func(base, dims string) string, c func(string) string) (state.Chain, []state.Jump) {
	chain := state.Chain{Table: TableFilter, Name: ChainClusterIPsCheck, Rules: []string{
		set("KUBE-SERVICE-CIDRS", "dst") + " -m addrtype ! --dst-type LOCAL -j DROP",
	}}
	jump := "-m conntrack --ctstate NEW " + c("kubernetes service cidrs") + " -j " + ChainClusterIPsCheck
	return chain, []state.Jump{{Table: TableFilter, From: "FORWARD", Rule: jump}, {Table: TableFilter, From: "OUTPUT", Rule: jump}}
}

// TableMangle is the table of the rules that must run before IPVS.
const TableMangle = "mangle"

// legacyChains are chains kube-proxy's ipvs mode makes that ipvs-proxy
// replaces: read like its own, never wanted, so removed with their jumps.
var legacyChains = []struct{ table, chain string }{
	{TableFilter, ChainOutFilter},
}

// outFilter returns the node-originated source-range check.
func outFilter(set func(base, dims string) string, c func(string) string) (state.Chain, state.Jump) {
	chain := state.Chain{Table: TableMangle, Name: ChainOutFilter, Rules: []string{
		"-m set ! --match-set " + set("KUBE-LOAD-BALANCER-FW", "dst,dst")[len("-m set --match-set "):] + " -j RETURN",
		set("KUBE-LOAD-BALANCER-SOURCE-CIDR", "dst,dst,src") + " -j RETURN",
		set("KUBE-LOAD-BALANCER-SOURCE-IP", "dst,dst,src") + " -j RETURN",
		"-j DROP",
	}}
	jump := state.Jump{Table: TableMangle, From: "OUTPUT",
		Rule: "-m conntrack --ctstate NEW " + c("kubernetes ipvs access filter") + " -j " + ChainOutFilter}
	return chain, jump
}
