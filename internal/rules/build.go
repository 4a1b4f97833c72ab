// Package rules builds ipvs-proxy's fixed iptables rule set, parses
// iptables-save output back into it, and renders iptables-restore input.
// It is pure: running the iptables tools is the kernel layer's job.
//
// The rule set does not grow with the number of Services: every per-Service
// decision is an ipset lookup. Rules are written in the canonical form
// iptables-save prints, so that observed and desired rules compare equal.
package rules

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Our chains.
const (
	ChainServices     = "KUBE-SERVICES"
	ChainPostrouting  = "KUBE-POSTROUTING"
	ChainNodePort     = "KUBE-NODE-PORT"
	ChainLoadBalancer = "KUBE-LOAD-BALANCER"
	ChainMarkMasq     = "KUBE-MARK-MASQ"
	ChainForward      = "KUBE-FORWARD"
	ChainFirewall     = "KUBE-PROXY-FIREWALL"
	ChainSourceRanges = "KUBE-SOURCE-RANGES-FIREWALL"
	ChainIPVSFilter   = "KUBE-IPVS-FILTER"
)

// Tables.
const (
	TableNAT    = "nat"
	TableFilter = "filter"
)

// Params is what the rules depend on.
type Params struct {
	Family        state.Family
	MasqueradeAll bool
	MasqueradeBit int
	// NotLocal is the match that selects traffic NOT from local pods, e.g.
	// "! -s 10.244.0.0/16" or "! -i cbr0"; empty if no detector applies.
	NotLocal string
	// Local is its opposite, "-s 10.244.0.0/16" or "-i cbr0".
	Local string
	// SetName maps a base set name to its name in this family.
	SetName func(base string) string
}

// NewParams derives rule parameters from the config and the node for family f.
func NewParams(cfg *config.Config, f state.Family, podCIDRs []netip.Prefix, setName func(string, state.Family) string) Params {
	return Params{
		Family:        f,
		MasqueradeAll: cfg.MasqueradeAll,
		MasqueradeBit: cfg.MasqueradeBit,
		NotLocal:      notLocalMatch(cfg, f, podCIDRs),
		Local:         strings.TrimPrefix(notLocalMatch(cfg, f, podCIDRs), "! "),
		SetName:       func(b string) string { return setName(b, f) },
	}
}

// notLocalMatch is kube-proxy's local traffic detector, negated.
func notLocalMatch(cfg *config.Config, f state.Family, podCIDRs []netip.Prefix) string {
	pick := func(cidrs []netip.Prefix) string {
		for _, p := range cidrs {
			if state.FamilyOf(p.Addr()) == f {
				return "! -s " + p.String()
			}
		}
		return ""
	}
	switch cfg.DetectLocal.Mode {
	case config.LocalModeClusterCIDR:
		return pick(cfg.ClusterCIDRs)
	case config.LocalModeNodeCIDR:
		return pick(podCIDRs)
	case config.LocalModeBridgeInterface:
		return "! -i " + cfg.DetectLocal.BridgeInterface
	case config.LocalModeInterfaceNamePrefix:
		return "! -i " + cfg.DetectLocal.InterfaceNamePrefix + "+"
	}
	return ""
}

// Build returns the rule set for one family.
func Build(p Params) state.RuleSet {
	mark := fmt.Sprintf("0x%x", uint32(1)<<uint(p.MasqueradeBit))
	set := func(base, dims string) string { return "-m set --match-set " + p.SetName(base) + " " + dims }
	c := func(text string) string { return `-m comment --comment "` + text + `"` }

	clusterMasq := set("KUBE-CLUSTER-IP", "dst,dst") + " -j " + ChainMarkMasq
	switch {
	case p.MasqueradeAll:
	case p.NotLocal != "":
		clusterMasq = p.NotLocal + " " + clusterMasq
	default:
		// no pod CIDR known: masquerade node-originated traffic whose source is a VIP
		clusterMasq = set("KUBE-CLUSTER-IP", "src,dst") + " -j " + ChainMarkMasq
	}
	extIP := set("KUBE-EXTERNAL-IP", "dst,dst")
	extIPLocal := set("KUBE-EXTERNAL-IP-LOCAL", "dst,dst")
	services := []string{
		set("KUBE-LOAD-BALANCER", "dst,dst") + " -j " + ChainLoadBalancer,
		clusterMasq,
		extIP + " -j " + ChainMarkMasq,
		extIP + " -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT",
		extIP + " -m addrtype --dst-type LOCAL -j ACCEPT",
		extIPLocal + " -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT",
		extIPLocal + " -m addrtype --dst-type LOCAL -j ACCEPT",
		"-m addrtype --dst-type LOCAL -j " + ChainNodePort,
		set("KUBE-CLUSTER-IP", "dst,dst") + " -j ACCEPT",
		set("KUBE-LOAD-BALANCER", "dst,dst") + " -j ACCEPT",
	}
	nodePort := []string{
		"-p tcp " + set("KUBE-NODE-PORT-LOCAL-TCP", "dst") + " -j RETURN",
		"-p tcp " + set("KUBE-NODE-PORT-TCP", "dst") + " -j " + ChainMarkMasq,
		"-p udp " + set("KUBE-NODE-PORT-LOCAL-UDP", "dst") + " -j RETURN",
		"-p udp " + set("KUBE-NODE-PORT-UDP", "dst") + " -j " + ChainMarkMasq,
		"-p sctp " + set("KUBE-NODE-PORT-LOCAL-SCTP-HASH", "dst,dst") + " -j RETURN",
		"-p sctp " + set("KUBE-NODE-PORT-SCTP-HASH", "dst,dst") + " -j " + ChainMarkMasq,
	}
	reject := "icmp-port-unreachable"
	if p.Family == state.IPv6 {
		reject = "icmp6-port-unreachable"
	}
	ipvsFilter := []string{
		set("KUBE-LOAD-BALANCER", "dst,dst") + " -j RETURN",
		set("KUBE-CLUSTER-IP", "dst,dst") + " -j RETURN",
		set("KUBE-EXTERNAL-IP", "dst,dst") + " -j RETURN",
		set("KUBE-EXTERNAL-IP-LOCAL", "dst,dst") + " -j RETURN",
		set("KUBE-HEALTH-CHECK-NODE-PORT", "dst") + " -j RETURN",
		"-m conntrack --ctstate NEW " + set("KUBE-IPVS-IPS", "dst") + " -j REJECT --reject-with " + reject,
	}
	outChain, outJump := outFilter(set, c)
	cidrChain, cidrJumps := clusterIPsCheck(set, c)
	markChain, markJumps, inClusterMasq := markInCluster(p, c)
	return state.RuleSet{
		Chains: []state.Chain{
			{Table: TableNAT, Name: ChainServices, Rules: services},
			{Table: TableNAT, Name: ChainPostrouting, Rules: []string{
				set("KUBE-LOOP-BACK", "dst,dst,src") + " -j MASQUERADE",
				inClusterMasq,
				"-m mark ! --mark " + mark + "/" + mark + " -j RETURN",
				"-j MARK --set-xmark " + mark + "/0x0",
				c("kubernetes service traffic requiring SNAT") + " -j MASQUERADE --random-fully",
			}},
			{Table: TableNAT, Name: ChainNodePort, Rules: nodePort},
			{Table: TableNAT, Name: ChainLoadBalancer, Rules: []string{
				set("KUBE-LOAD-BALANCER-LOCAL", "dst,dst") + " -j RETURN",
				"-j " + ChainMarkMasq,
			}},
			{Table: TableNAT, Name: ChainMarkMasq, Rules: []string{"-j MARK --set-xmark " + mark + "/" + mark}},
			{Table: TableFilter, Name: ChainForward, Rules: []string{
				c("kubernetes forwarding rules") + " -m mark --mark " + mark + "/" + mark + " -j ACCEPT",
				c("kubernetes forwarding conntrack rule") + " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
			}},
			{Table: TableFilter, Name: ChainNodePort, Rules: []string{set("KUBE-HEALTH-CHECK-NODE-PORT", "dst") + " -j ACCEPT"}},
			{Table: TableFilter, Name: ChainFirewall, Rules: []string{set("KUBE-LOAD-BALANCER-FW", "dst,dst") + " -j " + ChainSourceRanges}},
			{Table: TableFilter, Name: ChainSourceRanges, Rules: []string{
				set("KUBE-LOAD-BALANCER-SOURCE-CIDR", "dst,dst,src") + " -j RETURN",
				set("KUBE-LOAD-BALANCER-SOURCE-IP", "dst,dst,src") + " -j RETURN",
				"-j DROP",
			}},
			{Table: TableFilter, Name: ChainIPVSFilter, Rules: ipvsFilter},
			cidrChain,
			outChain,
			markChain,
		},
		Jumps: append([]state.Jump{
			{Table: TableNAT, From: "PREROUTING", Rule: c("kubernetes service portals") + " -j " + ChainServices},
			{Table: TableNAT, From: "OUTPUT", Rule: c("kubernetes service portals") + " -j " + ChainServices},
			{Table: TableNAT, From: "POSTROUTING", Rule: c("kubernetes postrouting rules") + " -j " + ChainPostrouting},
			{Table: TableFilter, From: "INPUT", Rule: c("kubernetes health check rules") + " -j " + ChainNodePort},
			{Table: TableFilter, From: "INPUT", Rule: c("kube-proxy firewall rules") + " -j " + ChainFirewall},
			{Table: TableFilter, From: "INPUT", Rule: c("kubernetes ipvs access filter") + " -j " + ChainIPVSFilter},
			{Table: TableFilter, From: "FORWARD", Rule: c("kubernetes forwarding rules") + " -j " + ChainForward},
			{Table: TableFilter, From: "FORWARD", Rule: c("kube-proxy firewall rules") + " -j " + ChainFirewall},
			outJump,
		}, append(cidrJumps, markJumps...)...),
	}
}
