package rules

import (
	"fmt"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

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

// externalTrafficPolicy Local for traffic that starts inside the cluster:
//
//	mangle PREROUTING -m conntrack --ctstate NEW -j KUBE-MARK-IN-CLUSTER
//	mangle OUTPUT     -m conntrack --ctstate NEW -j KUBE-MARK-IN-CLUSTER
//	mangle KUBE-MARK-IN-CLUSTER:
//	  -s <cluster CIDR> -j SET --map-set KUBE-EXTERNAL-LOCAL-MARK dst,dst --map-mark   (pods, if a local-traffic detector is set)
//	  -m addrtype --src-type LOCAL -j SET --map-set KUBE-EXTERNAL-LOCAL-MARK dst,dst --map-mark   (the node)
//	nat KUBE-POSTROUTING (second rule):
//	  -m ipvs --ipvs -m mark ! --mark 0x0/0x3fff -m addrtype --src-type LOCAL -j MASQUERADE --random-fully
//
// With externalTrafficPolicy Local, external clients must reach only this
// node's endpoints, with their source kept; but a pod or the node itself
// connecting to the Service's load balancer IP, external IP or NodePort is
// in-cluster traffic, which iptables and nftables modes (and Cilium) send to
// all the Service's endpoints: it would otherwise be refused on a node
// without a local endpoint. kube-proxy's ipvs mode gets both wrong at once
// by sending everyone to all endpoints when the node has none (#97081).
//
// Each such Service port has, besides its address virtual servers (local
// endpoints only), one firewall-mark virtual server per family with all its
// endpoints (chosen like the ClusterIP's under internalTrafficPolicy
// Cluster). KUBE-EXTERNAL-LOCAL-MARK maps every external address and port of
// the Service port (load balancer IPs, external IPs, node address and
// NodePort) to that port's mark; the SET target copies the mark of the
// member matching the first packet of an in-cluster connection onto it, and
// IPVS looks a packet's mark up before its address, so only in-cluster
// traffic meets the firewall-mark virtual server. The SET target's mapping
// works only in the mangle table, which also runs before IPVS on both paths
// (PREROUTING for pods, OUTPUT for the node). The rule count stays the same
// whatever the number of Services.
//
// Marks occupy the bits InClusterMarkMask gives (14 bits, clear of the
// masquerade bit) and are set under that mask, so other bits of the packet's
// mark are kept; as IPVS compares the whole mark, a packet another program
// has marked too falls back to the address virtual server (this node's
// endpoints). The node's own connections are masqueraded (the last rule
// above, restricted to IPVS traffic carrying such a mark), as in iptables
// mode: their source may be the load balancer IP itself, which other nodes
// hold too. Pods keep their source.
const (
	ChainMarkInCluster = "KUBE-MARK-IN-CLUSTER"
	// markBits is the width of the in-cluster marks: 16383 Service ports.
	markBits = 14
)

// InClusterMarkMask returns the bits of the packet mark the in-cluster
// firewall-mark virtual servers use: bits 0-13, or 16-29 when the masquerade
// bit falls in 0-13. A mark is n << bits.TrailingZeros32(mask) for n in
// 1..mask>>shift.
func InClusterMarkMask(masqueradeBit int) uint32 {
	mask := uint32(1)<<markBits - 1
	if masqueradeBit < markBits {
		mask <<= 16
	}
	return mask
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

// markInCluster returns the chain that marks in-cluster connections to the
// external addresses of externalTrafficPolicy Local Service ports, its
// jumps, and the masquerade rule of the node's own such connections.
func markInCluster(p Params, c func(string) string) (state.Chain, []state.Jump, string) {
	mapMark := "-j SET --map-set " + p.SetName("KUBE-EXTERNAL-LOCAL-MARK") + " dst,dst --map-mark"
	var rules []string
	if p.Local != "" {
		rules = append(rules, p.Local+" "+mapMark)
	}
	rules = append(rules, "-m addrtype --src-type LOCAL "+mapMark)
	chain := state.Chain{Table: TableMangle, Name: ChainMarkInCluster, Rules: rules}
	jump := "-m conntrack --ctstate NEW " + c("kubernetes in-cluster traffic to externalTrafficPolicy Local services") + " -j " + ChainMarkInCluster
	masq := fmt.Sprintf("-m ipvs --ipvs -m mark ! --mark 0x0/0x%x -m addrtype --src-type LOCAL -j MASQUERADE --random-fully", InClusterMarkMask(p.MasqueradeBit))
	return chain, []state.Jump{{Table: TableMangle, From: "PREROUTING", Rule: jump}, {Table: TableMangle, From: "OUTPUT", Rule: jump}}, masq
}
