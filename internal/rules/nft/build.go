package nft

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// The chains. Each regular chain stands for the iptables chain named beside
// it; the base chains stand for the jumps from the built-in chains.
const (
	ChainNATPrerouting  = "nat-prerouting"         // nat PREROUTING -j KUBE-SERVICES
	ChainNATOutput      = "nat-output"             // nat OUTPUT -j KUBE-SERVICES
	ChainNATPostrouting = "nat-postrouting"        // nat POSTROUTING -j KUBE-POSTROUTING
	ChainFilterInput    = "filter-input"           // filter INPUT -j KUBE-NODE-PORT, KUBE-PROXY-FIREWALL, KUBE-IPVS-FILTER
	ChainFilterForward  = "filter-forward"         // filter FORWARD -j KUBE-FORWARD, KUBE-PROXY-FIREWALL
	ChainServices       = "services"               // nat KUBE-SERVICES
	ChainPostrouting    = "postrouting"            // nat KUBE-POSTROUTING
	ChainNodePort       = "node-port"              // nat KUBE-NODE-PORT
	ChainLoadBalancer   = "mark-load-balancer"     // nat KUBE-LOAD-BALANCER
	ChainMarkMasq       = "mark-for-masquerade"    // nat KUBE-MARK-MASQ
	ChainForward        = "forward"                // filter KUBE-FORWARD
	ChainHealthCheck    = "health-check"           // filter KUBE-NODE-PORT
	ChainFirewall       = "firewall"               // filter KUBE-PROXY-FIREWALL
	ChainSourceRanges   = "source-ranges-firewall" // filter KUBE-SOURCE-RANGES-FIREWALL
	ChainIPVSFilter     = "ipvs-filter"            // filter KUBE-IPVS-FILTER
	// issue 12's rules (internal/rules/fixes.go says why each exists)
	ChainFilterOutput     = "filter-output"     // filter OUTPUT -j KUBE-CLUSTER-IPS-CHECK
	ChainManglePrerouting = "mangle-prerouting" // mangle PREROUTING -j KUBE-MARK-IN-CLUSTER
	ChainMangleOutput     = "mangle-output"     // mangle OUTPUT -j KUBE-IPVS-OUT-FILTER, KUBE-MARK-IN-CLUSTER
	ChainClusterIPsCheck  = "cluster-ips-check" // filter KUBE-CLUSTER-IPS-CHECK
	ChainOutFilter        = "out-filter"        // mangle KUBE-IPVS-OUT-FILTER
	ChainMarkInCluster    = "mark-in-cluster"   // mangle KUBE-MARK-IN-CLUSTER
)

// Params is what the table depends on.
type Params struct {
	Family        state.Family
	MasqueradeAll bool
	MasqueradeBit int
	// NotLocal is the match that selects traffic NOT from local pods, e.g.
	// `ip saddr != 10.244.0.0/16` or `iifname != "cbr0"`; empty if no detector applies.
	NotLocal string
	// Local is its opposite: `ip saddr 10.244.0.0/16`, `iifname "cbr0"`.
	Local string
}

// NewParams derives the table's parameters from the config and the node for family f.
func NewParams(cfg *config.Config, f state.Family, podCIDRs []netip.Prefix) Params {
	notLocal := notLocalMatch(cfg, f, podCIDRs)
	return Params{Family: f, MasqueradeAll: cfg.MasqueradeAll, MasqueradeBit: cfg.MasqueradeBit, NotLocal: notLocal,
		Local: strings.Replace(notLocal, " != ", " ", 1)}
}

// notLocalMatch is kube-proxy's local traffic detector, negated, in nft syntax.
func notLocalMatch(cfg *config.Config, f state.Family, podCIDRs []netip.Prefix) string {
	pick := func(cidrs []netip.Prefix) string {
		for _, p := range cidrs {
			if state.FamilyOf(p.Addr()) == f {
				return ipx(f) + " saddr != " + p.Masked().String()
			}
		}
		return ""
	}
	iface := func(name string) string {
		if name == "" || strings.ContainsAny(name, "\"\\ \t\n") {
			return "" // cannot be an interface name; config validation reports it
		}
		return `iifname != "` + name + `"`
	}
	switch cfg.DetectLocal.Mode {
	case config.LocalModeClusterCIDR:
		return pick(cfg.ClusterCIDRs)
	case config.LocalModeNodeCIDR:
		return pick(podCIDRs)
	case config.LocalModeBridgeInterface:
		return iface(cfg.DetectLocal.BridgeInterface)
	case config.LocalModeInterfaceNamePrefix:
		return iface(cfg.DetectLocal.InterfaceNamePrefix + "*")
	}
	return ""
}

func ipx(f state.Family) string {
	if f == state.IPv6 {
		return "ip6"
	}
	return "ip"
}

// Build returns the table of one family. Rules name the sets by the nft
// name of their IPv4 ipset (SetName).
func Build(p Params) state.NFTable {
	ip := ipx(p.Family)
	mark := fmt.Sprintf("0x%x", uint32(1)<<uint(p.MasqueradeBit))
	set := func(ipset string) string { return "@" + SetName(ipset) }
	dst := ip + " daddr . meta l4proto . th dport "                       // ipset dst,dst
	dstSrc := ip + " daddr . meta l4proto . th dport . " + ip + " saddr " // ipset dst,dst,src
	ports := "meta l4proto { tcp, udp, sctp } th dport "                  // ipset dst on a bitmap:port
	jump := func(c string) string { return "jump " + c }

	clusterMasq := dst + set("KUBE-CLUSTER-IP") + " " + jump(ChainMarkMasq)
	switch {
	case p.MasqueradeAll:
	case p.NotLocal != "":
		clusterMasq = p.NotLocal + " " + clusterMasq
	default:
		// no pod CIDR known: masquerade node-originated traffic whose source is a VIP (ipset src,dst)
		clusterMasq = ip + " saddr . meta l4proto . th dport " + set("KUBE-CLUSTER-IP") + " " + jump(ChainMarkMasq)
	}
	reject := "reject with icmp port-unreachable"
	if p.Family == state.IPv6 {
		reject = "reject with icmpv6 port-unreachable"
	}
	// externalTrafficPolicy Local in-cluster marks. iptables' SET target sets
	// the mark under the mask; an nft statement cannot combine the packet's
	// mark with a map's value, so the mark is set only on packets that carry
	// no bit outside the mask. Either way such a packet misses every
	// firewall-mark virtual server (IPVS compares the whole mark) and goes to
	// the address one, and this way another program's bits are kept.
	mask := rules.InClusterMarkMask(p.MasqueradeBit)
	setMark := fmt.Sprintf("meta mark & 0x%x == 0 meta mark set %s map %s", ^mask, strings.TrimSuffix(dst, " "), set("KUBE-EXTERNAL-LOCAL-MARK"))
	var markInCluster []string
	if p.Local != "" {
		markInCluster = append(markInCluster, p.Local+" "+setMark)
	}
	markInCluster = append(markInCluster, "fib saddr type local "+setMark)
	// iptables matches the node's own connections to such a Service with -m
	// ipvs --ipvs; nft has no ipvs match, so the connection's original
	// destination (IPVS has rewritten the packet's; with vs/conntrack=1
	// conntrack keeps it) must be one of the marked external addresses. The
	// lookup is a map statement that sets the mark the packet already has
	// (the one mark-in-cluster set, from the same element): Linux before 6.x
	// refuses a map as a plain set lookup, and a statement whose lookup
	// misses ends the rule. nft needs the protocol first to size proto-dst.
	inClusterMasq := fmt.Sprintf("meta mark & 0x%x == 0 meta mark & 0x%x != 0 fib saddr type local meta l4proto { tcp, udp, sctp } "+
		"meta mark set ct original %s daddr . meta l4proto . ct original proto-dst map %s masquerade fully-random",
		^mask, mask, ip, set("KUBE-EXTERNAL-LOCAL-MARK"))
	return state.NFTable{Chains: []state.NFTChain{
		base(ChainNATPrerouting, "nat", "prerouting", "dstnat", jump(ChainServices)),
		base(ChainNATOutput, "nat", "output", "dstnat", jump(ChainServices)),
		base(ChainNATPostrouting, "nat", "postrouting", "srcnat", jump(ChainPostrouting)),
		base(ChainFilterInput, "filter", "input", "filter", jump(ChainHealthCheck), jump(ChainFirewall), jump(ChainIPVSFilter)),
		base(ChainFilterForward, "filter", "forward", "filter", jump(ChainForward), jump(ChainFirewall), "ct state new "+jump(ChainClusterIPsCheck)),
		base(ChainFilterOutput, "filter", "output", "filter", "ct state new "+jump(ChainClusterIPsCheck)),
		// before IPVS (priority -99 at local out), as iptables' mangle table; a
		// route chain, as mangle OUTPUT is: a changed mark re-routes the packet
		base(ChainManglePrerouting, "filter", "prerouting", "mangle", "ct state new "+jump(ChainMarkInCluster)),
		base(ChainMangleOutput, "route", "output", "mangle", "ct state new "+jump(ChainOutFilter), "ct state new "+jump(ChainMarkInCluster)),
		chain(ChainServices,
			dst+set("KUBE-LOAD-BALANCER")+" "+jump(ChainLoadBalancer),
			clusterMasq,
			dst+set("KUBE-EXTERNAL-IP")+" "+jump(ChainMarkMasq),
			// kube-proxy's accepts of external IPs (with physdev and addrtype
			// conditions) only decide whether this chain ends here or falls
			// through to rules that cannot match such a packet: it ends here.
			dst+set("KUBE-EXTERNAL-IP")+" return",
			dst+set("KUBE-EXTERNAL-IP-LOCAL")+" return",
			"fib daddr type local "+jump(ChainNodePort),
			dst+set("KUBE-CLUSTER-IP")+" return",
			dst+set("KUBE-LOAD-BALANCER")+" return",
		),
		chain(ChainPostrouting,
			dstSrc+set("KUBE-LOOP-BACK")+" masquerade",
			inClusterMasq,
			"meta mark & "+mark+" == 0 return",
			"meta mark set meta mark ^ "+mark,
			"masquerade fully-random",
		),
		chain(ChainNodePort,
			"meta l4proto tcp th dport "+set("KUBE-NODE-PORT-LOCAL-TCP")+" return",
			"meta l4proto tcp th dport "+set("KUBE-NODE-PORT-TCP")+" "+jump(ChainMarkMasq),
			"meta l4proto udp th dport "+set("KUBE-NODE-PORT-LOCAL-UDP")+" return",
			"meta l4proto udp th dport "+set("KUBE-NODE-PORT-UDP")+" "+jump(ChainMarkMasq),
			dst+set("KUBE-NODE-PORT-LOCAL-SCTP-HASH")+" return",
			dst+set("KUBE-NODE-PORT-SCTP-HASH")+" "+jump(ChainMarkMasq),
		),
		chain(ChainLoadBalancer,
			dst+set("KUBE-LOAD-BALANCER-LOCAL")+" return",
			jump(ChainMarkMasq),
		),
		chain(ChainMarkMasq, "meta mark set meta mark | "+mark),
		chain(ChainForward,
			"meta mark & "+mark+" != 0 accept",
			"ct state related,established accept",
		),
		chain(ChainHealthCheck, ports+set("KUBE-HEALTH-CHECK-NODE-PORT")+" accept"),
		chain(ChainFirewall, dst+set("KUBE-LOAD-BALANCER-FW")+" "+jump(ChainSourceRanges)),
		chain(ChainSourceRanges,
			dstSrc+set("KUBE-LOAD-BALANCER-SOURCE-CIDR")+" return",
			dstSrc+set("KUBE-LOAD-BALANCER-SOURCE-IP")+" return",
			"drop",
		),
		chain(ChainIPVSFilter,
			dst+set("KUBE-LOAD-BALANCER")+" return",
			dst+set("KUBE-CLUSTER-IP")+" return",
			dst+set("KUBE-EXTERNAL-IP")+" return",
			dst+set("KUBE-EXTERNAL-IP-LOCAL")+" return",
			ports+set("KUBE-HEALTH-CHECK-NODE-PORT")+" return",
			"ct state new "+ip+" daddr "+set("KUBE-IPVS-IPS")+" "+reject,
		),
		chain(ChainClusterIPsCheck, ip+" daddr "+set("KUBE-SERVICE-CIDRS")+" fib daddr type != local drop"),
		chain(ChainOutFilter,
			dst+"!= "+set("KUBE-LOAD-BALANCER-FW")+" return",
			dstSrc+set("KUBE-LOAD-BALANCER-SOURCE-CIDR")+" return",
			dstSrc+set("KUBE-LOAD-BALANCER-SOURCE-IP")+" return",
			"drop",
		),
		chain(ChainMarkInCluster, markInCluster...),
	}}
}

func chain(name string, rules ...string) state.NFTChain {
	c := state.NFTChain{Name: name}
	for _, r := range rules {
		c.Rules = append(c.Rules, state.NFTRule{Text: r, ID: ruleID(r)})
	}
	return c
}

func base(name, typ, hook, prio string, rules ...string) state.NFTChain {
	c := chain(name, rules...)
	c.Base = &state.NFTBase{Type: typ, Hook: hook, Priority: prio}
	return c
}
