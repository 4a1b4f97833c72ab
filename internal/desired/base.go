package desired

import (
	"strconv"

	"github.com/ipvs-proxy/ipvs-proxy/internal/rules"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules/nft"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Base returns the part of the desired state that does not depend on
// Services: the link, the (empty) sets of each family this node serves, the
// iptables rules or (with the nftables backend) the nftables tables, the
// sysctls and the IPVS timeouts.
func Base(in *Input) *state.State {
	s := state.New()
	s.Link = true
	cfg := in.Config
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		if !in.families[f] {
			continue
		}
		for _, spec := range SetSpecs(f) {
			s.Sets[spec.Name] = state.NewSet(spec)
		}
		for _, p := range outermost(in.Node.ServiceCIDRs) { // an nft interval set refuses overlaps
			if state.FamilyOf(p.Addr()) == f {
				s.Sets[SetName(SetServiceCIDRs, f)].Entries[state.SetEntry{Net: p}] = struct{}{}
			}
		}
		if cfg.RulesBackend == state.BackendNFTables {
			s.Tables[f] = nft.Build(nft.NewParams(cfg, f, in.Node.PodCIDRs))
			continue
		}
		p := rules.NewParams(cfg, f, in.Node.PodCIDRs, SetName)
		s.Rules[f] = rules.Build(p)
	}
	for k, v := range sysctls(in) {
		s.Sysctls[k] = v
	}
	s.Timeouts = cfg.IPVS.Timeouts
	return s
}

// sysctls are the kernel settings kube-proxy's ipvs mode makes.
func sysctls(in *Input) map[string]string {
	cfg := in.Config
	out := map[string]string{
		"net/ipv4/vs/conntrack":                 "1",
		"net/ipv4/vs/expire_nodest_conn":        "1",
		"net/ipv4/vs/expire_quiescent_template": "1",
		"net/ipv4/ip_forward":                   "1",
	}
	if v, set, _ := ConnReuseMode(in.Node.KernelRelease); set {
		out[SysctlConnReuseMode] = v
	}
	if cfg.IPVS.StrictARP {
		out["net/ipv4/conf/all/arp_ignore"] = "1"
		out["net/ipv4/conf/all/arp_announce"] = "2"
	}
	ct := cfg.Conntrack
	if max := int(ct.MaxPerCore) * in.Node.CPUs; ct.MaxPerCore > 0 && in.Node.CPUs > 0 {
		if max < int(ct.Min) {
			max = int(ct.Min)
		}
		out["net/netfilter/nf_conntrack_max"] = strconv.Itoa(max)
	}
	secs := func(key string, d interface{ Seconds() float64 }) {
		if s := int(d.Seconds()); s > 0 {
			out[key] = strconv.Itoa(s)
		}
	}
	secs("net/netfilter/nf_conntrack_tcp_timeout_established", ct.TCPEstablishedTimeout)
	secs("net/netfilter/nf_conntrack_tcp_timeout_close_wait", ct.TCPCloseWaitTimeout)
	secs("net/netfilter/nf_conntrack_udp_timeout", ct.UDPTimeout)
	secs("net/netfilter/nf_conntrack_udp_timeout_stream", ct.UDPStreamTimeout)
	if ct.TCPBeLiberal {
		out["net/netfilter/nf_conntrack_tcp_be_liberal"] = "1"
	}
	return out
}
