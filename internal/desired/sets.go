package desired

import (
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// The ipsets, by their IPv4 names (kube-proxy's ipvs mode uses the same names,
// so a node switched from kube-proxy keeps working and can be cleaned up).
const (
	SetLoopBack             = "KUBE-LOOP-BACK"
	SetClusterIP            = "KUBE-CLUSTER-IP"
	SetExternalIP           = "KUBE-EXTERNAL-IP"
	SetExternalIPLocal      = "KUBE-EXTERNAL-IP-LOCAL"
	SetLoadBalancer         = "KUBE-LOAD-BALANCER"
	SetLoadBalancerLocal    = "KUBE-LOAD-BALANCER-LOCAL"
	SetLoadBalancerFW       = "KUBE-LOAD-BALANCER-FW"
	SetLoadBalancerSourceIP = "KUBE-LOAD-BALANCER-SOURCE-IP"
	SetLoadBalancerSrcCIDR  = "KUBE-LOAD-BALANCER-SOURCE-CIDR"
	SetNodePortTCP          = "KUBE-NODE-PORT-TCP"
	SetNodePortLocalTCP     = "KUBE-NODE-PORT-LOCAL-TCP"
	SetNodePortUDP          = "KUBE-NODE-PORT-UDP"
	SetNodePortLocalUDP     = "KUBE-NODE-PORT-LOCAL-UDP"
	SetNodePortSCTP         = "KUBE-NODE-PORT-SCTP-HASH"
	SetNodePortLocalSCTP    = "KUBE-NODE-PORT-LOCAL-SCTP-HASH"
	SetHealthCheckNodePort  = "KUBE-HEALTH-CHECK-NODE-PORT"
	SetIPVSIPs              = "KUBE-IPVS-IPS"
	// Sets ipvs-proxy adds to kube-proxy's (internal/rules/fixes.go says why).
	SetServiceCIDRs       = "KUBE-SERVICE-CIDRS"
	SetExternalLocalMarks = "KUBE-EXTERNAL-LOCAL-MARK"
)

// setCatalog is every set ipvs-proxy creates, with its type and purpose.
var setCatalog = []struct {
	name    string
	typ     state.SetType
	comment string
	marks   bool
}{
	{SetLoopBack, state.HashIPPortIP, "endpoint ip:port and its own ip as source, for hairpin masquerade", false},
	{SetClusterIP, state.HashIPPort, "cluster ip:port of every service", false},
	{SetExternalIP, state.HashIPPort, "external ip:port of services", false},
	{SetExternalIPLocal, state.HashIPPort, "external ip:port of services with externalTrafficPolicy Local", false},
	{SetLoadBalancer, state.HashIPPort, "load balancer ingress ip:port", false},
	{SetLoadBalancerLocal, state.HashIPPort, "load balancer ingress ip:port with externalTrafficPolicy Local", false},
	{SetLoadBalancerFW, state.HashIPPort, "load balancer ingress ip:port with loadBalancerSourceRanges", false},
	{SetLoadBalancerSourceIP, state.HashIPPortIP, "load balancer ingress ip:port and an allowed source ip", false},
	{SetLoadBalancerSrcCIDR, state.HashIPPortNet, "load balancer ingress ip:port and an allowed source cidr", false},
	{SetNodePortTCP, state.BitmapPort, "TCP node ports", false},
	{SetNodePortLocalTCP, state.BitmapPort, "TCP node ports with externalTrafficPolicy Local", false},
	{SetNodePortUDP, state.BitmapPort, "UDP node ports", false},
	{SetNodePortLocalUDP, state.BitmapPort, "UDP node ports with externalTrafficPolicy Local", false},
	{SetNodePortSCTP, state.HashIPPort, "SCTP node ip:port", false},
	{SetNodePortLocalSCTP, state.HashIPPort, "SCTP node ip:port with externalTrafficPolicy Local", false},
	{SetHealthCheckNodePort, state.BitmapPort, "health check node ports", false},
	{SetIPVSIPs, state.HashIP, "addresses bound on kube-ipvs0", false},
	{SetServiceCIDRs, state.HashNet, "service cidrs: traffic to their unallocated cluster ips is dropped", false},
	{SetExternalLocalMarks, state.HashIPPort, "externalTrafficPolicy Local ip:port and the mark of its in-cluster virtual server", true},
}

// SetName returns the name of set base for family f: IPv6 sets are prefixed
// KUBE-6- and cut to ipset's 31 characters, exactly as kube-proxy names them.
func SetName(base string, f state.Family) string {
	if f == state.IPv4 {
		return base
	}
	name := strings.Replace(base, "KUBE-", "KUBE-6-", 1)
	if len(name) > 31 {
		name = name[:31]
	}
	return name
}

// SetSpecs returns every set ipvs-proxy creates for family f.
func SetSpecs(f state.Family) []state.SetSpec {
	out := make([]state.SetSpec, 0, len(setCatalog))
	for _, s := range setCatalog {
		out = append(out, state.SetSpec{Name: SetName(s.name, f), Type: s.typ, Family: f, Comment: s.comment, Marks: s.marks})
	}
	return out
}

// OwnedSetNames returns every set name ipvs-proxy may own, for both families.
// Sets with other names, KUBE- prefixed or not, are never touched.
func OwnedSetNames() map[string]state.SetSpec {
	out := map[string]state.SetSpec{}
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		for _, s := range SetSpecs(f) {
			out[s.Name] = s
		}
	}
	return out
}
