package desired

import (
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// nodePortPrefixes returns, per IP family, the prefixes a node address must
// be in to serve NodePorts; a family without an entry serves them on every
// address of its family. This is kube-proxy's NewNodePortAddresses: the list
// applies per family, so a dual-stack node with the common legacy setting
// nodePortAddresses: ["0.0.0.0/0"] keeps its IPv6 NodePorts.
//
// "primary" is the Node's primary address of each family as kube-proxy picks
// it (the first InternalIP, else ExternalIP, of each family: see
// [Node.PrimaryAddresses]); a family without one falls back to all of its
// addresses, and a Node without any address to every address.
func nodePortPrefixes(cfg *config.Config, node Node) map[state.Family][]netip.Prefix {
	cidrs := cfg.NodePortAddresses
	if cfg.NodePortPrimary {
		cidrs = nil
		for _, a := range PrimaryPerFamily(node.PrimaryAddresses) {
			if !a.IsLoopback() {
				cidrs = append(cidrs, state.HostPrefix(a))
			}
		}
	}
	out := map[state.Family][]netip.Prefix{}
	for _, p := range cidrs {
		f := state.FamilyOf(p.Addr())
		out[f] = append(out[f], p)
	}
	return out
}

// PrimaryPerFamily returns the first address of each family, in the order
// given (kube-proxy's GetNodeHostIPs: the first address is the primary, the
// first one of the other family the secondary).
func PrimaryPerFamily(addrs []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if !slices.ContainsFunc(out, func(b netip.Addr) bool { return state.FamilyOf(b) == state.FamilyOf(a) }) {
			out = append(out, a)
		}
	}
	return out
}

// nodePortAllowed reports whether a serves NodePorts under the family's prefixes.
func nodePortAllowed(prefixes map[state.Family][]netip.Prefix, a netip.Addr) bool {
	ps, limited := prefixes[state.FamilyOf(a)]
	if !limited {
		return true
	}
	return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
}
