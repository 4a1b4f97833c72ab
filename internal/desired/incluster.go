package desired

import (
	"net/netip"

	"github.com/ipvs-proxy/ipvs-proxy/internal/rules"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// externalTrafficPolicy Local for traffic that starts inside the cluster
// (see internal/rules/fixes.go for the datapath): each Service port with
// external addresses gets, per family, a firewall-mark virtual server with
// all its endpoints, and every external address:port of the port becomes a
// member of KUBE-EXTERNAL-LOCAL-MARK carrying that mark. Address virtual
// servers keep only this node's endpoints, for external clients.
//
// A fragment cannot know the marks: they must be unique on the node, so the
// Index assigns them (marks.go). Until it does, a fragment's firewall-mark
// keys and members carry a placeholder, the port's position in
// Fragment.MarkPorts plus one.

// hasExternal reports whether Service port p has an external address of
// family fam on this node.
func (b *fragmentBuilder) hasExternal(fam state.Family, p servicePort) bool {
	for _, a := range append(b.s.externalIPs, b.s.lbIPs...) {
		if state.FamilyOf(a) == fam {
			return true
		}
	}
	return p.nodePort != 0 && len(b.in.NodePortAddresses(fam)) > 0
}

// inCluster adds the firewall-mark virtual server of Service port p in family
// fam, with endpoints eps, and the marks of its external addresses.
func (b *fragmentBuilder) inCluster(fam state.Family, p servicePort, eps []endpoint) {
	placeholder := uint32(0)
	for i, l := range b.f.MarkPorts {
		if l == p.label {
			placeholder = uint32(i + 1)
		}
	}
	if placeholder == 0 {
		b.f.MarkPorts = append(b.f.MarkPorts, p.label)
		placeholder = uint32(len(b.f.MarkPorts))
	}
	vs := b.vs(state.FWMarkKey(placeholder, fam), p, state.KindInCluster)
	b.f.Services = append(b.f.Services, &state.Service{VirtualServer: vs, RealServers: realServers(eps)})

	mask := rules.InClusterMarkMask(b.in.Config.MasqueradeBit)
	b.f.MarkMask = mask
	mark := func(a netip.Addr, port uint16) {
		b.member(SetName(SetExternalLocalMarks, fam), state.SetEntry{Addr: a, Proto: p.proto, Port: port, Mark: placeholder, MarkMask: mask})
	}
	for _, a := range append(b.s.externalIPs, b.s.lbIPs...) {
		if state.FamilyOf(a) == fam {
			mark(a, p.port)
		}
	}
	if p.nodePort != 0 {
		for _, a := range b.in.NodePortAddresses(fam) {
			mark(a, p.nodePort)
		}
	}
}
