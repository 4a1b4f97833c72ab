package plan

import (
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Firewall-mark virtual servers (the in-cluster virtual servers of
// externalTrafficPolicy Local Service ports) have no protocol, address or
// port of their own: the members of KUBE-EXTERNAL-LOCAL-MARK carrying their
// mark say which addresses and ports lead to them, with the protocol. They
// decide how a removed real server goes (UDP: at once, with its conntrack
// entries, for each of those addresses) and whether an unwanted one is ours.

// marked returns the distinct mark set members (wanted or held) that carry
// k's mark, in k's family.
func (d *differ) marked(k state.VSKey) []state.SetEntry {
	name := desired.SetName(desired.SetExternalLocalMarks, state.FamilyOf(k.Addr))
	seen := map[state.SetEntry]bool{}
	var out []state.SetEntry
	for _, s := range []*state.State{d.want, d.have} {
		if set := s.Sets[name]; set != nil {
			for e := range set.Entries {
				if e.Mark == k.FWMark && !seen[e.Key()] {
					seen[e.Key()] = true
					out = append(out, e)
				}
			}
		}
	}
	return out
}

// isUDP reports whether virtual server k carries UDP.
func (d *differ) isUDP(k state.VSKey) bool {
	if k.FWMark == 0 {
		return k.Proto == state.UDP
	}
	m := d.marked(k)
	return len(m) > 0 && m[0].Proto == state.UDP
}

// flush adds the conntrack flush of vs (of rs only, when valid): for a
// firewall-mark virtual server, one per address and port that leads to it.
func (d *differ) flush(vs state.VirtualServer, rs state.RealServer) {
	if vs.Key.FWMark == 0 {
		d.add(Op{Kind: FlushConntrack, VS: vs, RS: rs})
		return
	}
	for _, e := range d.marked(vs.Key) {
		d.add(Op{Kind: FlushConntrack, VS: state.VirtualServer{Key: state.VSKey{Proto: e.Proto, Addr: e.Addr, Port: e.Port}}, RS: rs})
	}
}

// ownedMark reports whether a held firewall-mark virtual server is ours:
// our mark set holds members carrying its mark.
func (d *differ) ownedMark(k state.VSKey) bool {
	if set := d.have.Sets[desired.SetName(desired.SetExternalLocalMarks, state.FamilyOf(k.Addr))]; set != nil {
		for e := range set.Entries {
			if e.Mark == k.FWMark {
				return true
			}
		}
	}
	return false
}
