package desired

import (
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Node is what compute needs to know about the node it runs on.
type Node struct {
	Name string
	// Labels of the Node object (topology.kubernetes.io/zone is used).
	Labels map[string]string
	// Addresses are the node's own addresses: every local address except those
	// on kube-ipvs0. NodePort virtual servers listen on them.
	Addresses []netip.Addr
	// PrimaryAddresses are the Node object's InternalIPs, then its
	// ExternalIPs, in order; the first of each family is the node's primary
	// address of that family (nodePortAddresses: primary).
	PrimaryAddresses []netip.Addr
	// PodCIDRs are the Node's spec.podCIDRs (detectLocalMode: NodeCIDR).
	PodCIDRs []netip.Prefix
	// CPUs sizes the conntrack table (conntrack.maxPerCore); 0 leaves it alone.
	CPUs int
	// KernelRelease is the running kernel's release (uname -r), e.g.
	// "6.1.0-18-amd64"; "" if unknown.
	KernelRelease string
	// ServiceCIDRs are the cluster's ServiceCIDR ranges (see ServiceCIDRs):
	// not the node's own, but like the rest here every Service's state
	// depends on them.
	ServiceCIDRs []netip.Prefix
}

// Families returns the IP families this node can serve: those of its addresses.
func (n Node) Families() []state.Family {
	var out []state.Family
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		if slices.ContainsFunc(n.Addresses, func(a netip.Addr) bool { return state.FamilyOf(a) == f }) {
			out = append(out, f)
		}
	}
	return out
}

// Input is everything besides the Service itself that its fragment depends on.
// When any of it changes, every Service must be recomputed.
type Input struct {
	Config *config.Config
	Node   Node
	// MissingSchedulers are schedulers this node's kernel lacks (probed by
	// the proxier): a Service annotated with one keeps the default, with an
	// error, instead of having every operation refused by the kernel.
	MissingSchedulers map[string]bool
	// families and nodePortAddrs are derived from Config and Node by NewInput.
	families      map[state.Family]bool
	nodePortAddrs map[state.Family][]netip.Addr
}

// NewInput derives what ForService needs from the config and the node.
func NewInput(cfg *config.Config, node Node) *Input {
	in := &Input{Config: cfg, Node: node, families: map[state.Family]bool{}, nodePortAddrs: map[state.Family][]netip.Addr{}}
	for _, f := range node.Families() {
		in.families[f] = true
	}
	prefixes := nodePortPrefixes(cfg, node)
	seen := map[netip.Addr]bool{}
	for _, a := range node.Addresses {
		a = a.Unmap()
		// IPVS cannot serve a NodePort on a loopback address: its NAT
		// transmitter refuses to send a packet with a loopback source to a
		// real server elsewhere (crosses_local_route_boundary in
		// net/netfilter/ipvs/ip_vs_xmit.c), so kube-proxy's ipvs mode skips
		// them too (kubernetes#96879).
		if a.IsLoopback() || seen[a] || !in.families[state.FamilyOf(a)] || !nodePortAllowed(prefixes, a) {
			continue
		}
		seen[a] = true
		in.nodePortAddrs[state.FamilyOf(a)] = append(in.nodePortAddrs[state.FamilyOf(a)], a)
	}
	for _, list := range in.nodePortAddrs {
		slices.SortFunc(list, netip.Addr.Compare)
	}
	return in
}

// WithMissingSchedulers returns a copy of in with another set of missing
// schedulers; fragments computed with in stay valid for every Service that
// names none of the schedulers that changed.
func (in *Input) WithMissingSchedulers(m map[string]bool) *Input {
	c := *in
	c.MissingSchedulers = m
	return &c
}

// NodePortAddresses returns the addresses NodePort virtual servers use for family f.
func (in *Input) NodePortAddresses(f state.Family) []netip.Addr { return in.nodePortAddrs[f] }

// isNodeAddress reports whether a is one of the node's own addresses.
func (in *Input) isNodeAddress(a netip.Addr) bool {
	return slices.Contains(in.Node.Addresses, a)
}
