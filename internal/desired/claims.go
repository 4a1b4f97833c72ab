package desired

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Precedence between Services that want the same thing. Any tenant who may
// create a Service may write externalIPs (CVE-2020-8554), so a Service must
// never take what the cluster allocated to another:
//
//   - An address has one role: a Service's ClusterIP comes before a
//     LoadBalancer ingress IP, which comes before an externalIP. An
//     externalIP equal to a ClusterIP (10.96.0.1, the API server's) or to a
//     LoadBalancer IP is refused on every port; so is a LoadBalancer IP equal
//     to a ClusterIP. NodePort virtual servers sit on the node's own
//     addresses, which LoadBalancer IPs may share (ServiceLB does), so they
//     contend per virtual server only, as allocated addresses.
//   - Services that use an address in the same role share it; a virtual
//     server (protocol, address, port) two of them want goes to the older
//     Service (creationTimestamp), and between equals to the one whose
//     namespace/name sorts first, whatever the order they arrived in.
//
// The loser gets neither the virtual server nor the addresses and set
// members that go with it (an externalIP set member would masquerade the
// winner's traffic), and an error naming who keeps it.

// Ranks of the roles, best first.
const (
	rankAllocated = iota // ClusterIP, NodePort
	rankLoadBalancer
	rankExternal
	numRanks
)

func rankOf(k state.Kind) int {
	switch k {
	case state.KindLoadBalancer:
		return rankLoadBalancer
	case state.KindExternalIP:
		return rankExternal
	}
	return rankAllocated
}

var roleNames = [numRanks]string{"ClusterIP", "LoadBalancer ingress IP", "externalIP"}

// claim is one Service's want of one virtual server.
type claim struct {
	service string
	vs      *state.Service
	rank    int
	created time.Time
}

// before orders claims: better role, older, then by name.
func (c *claim) before(o *claim) bool {
	if c.rank != o.rank {
		return c.rank < o.rank
	}
	if !c.created.Equal(o.created) {
		return c.created.Before(o.created)
	}
	return c.service < o.service
}

// contest is every claim on one virtual server, in order, and the winner.
type contest struct {
	claims []*claim
	winner *claim
}

// serviceExtras splits a fragment's addresses and members into those that
// go with one of its virtual servers (counted while it wins that one) and
// the others (the hairpin members of its endpoints, its health check port).
// It refers to them by index into the fragment (a member i as i, an
// address i as ^i), not by copies: at 10,000 Services it is most of what
// the index holds besides the fragments.
type serviceExtras struct {
	f *Fragment
	// tied lists, by virtual server (sorted), a span of refs.
	tied   []tiedSpan
	refs   []int32
	untied []int32
	// roles are the addresses it uses in a role that excludes lesser ones.
	roles []role
}

type tiedSpan struct {
	key        state.VSKey
	start, end int32
}

type role struct {
	addr netip.Addr
	rank int
}

// tiedTo returns the refs that go with virtual server k.
func (se *serviceExtras) tiedTo(k state.VSKey) []int32 {
	i, found := slices.BinarySearchFunc(se.tied, k, func(t tiedSpan, k state.VSKey) int { return cmpKeys(t.key, k) })
	if !found {
		return nil
	}
	return se.refs[se.tied[i].start:se.tied[i].end]
}

func cmpKeys(a, b state.VSKey) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}

// splitExtras ties each address and member of f to the virtual servers it
// serves: an ip,proto:port member to that virtual server, an address (and
// its KUBE-IPVS-IPS member) to the virtual servers on it, a node port to
// the NodePort virtual servers with that port.
func splitExtras(f *Fragment) *serviceExtras {
	se := &serviceExtras{f: f}
	keys := make(map[state.VSKey]bool, len(f.Services))
	at := map[netip.Addr][]state.VSKey{}
	nodePorts := map[uint16][]state.VSKey{}
	for _, s := range f.Services {
		keys[s.Key] = true
		switch s.Origin.Kind {
		case state.KindNodePort:
			nodePorts[s.Key.Port] = append(nodePorts[s.Key.Port], s.Key)
			continue
		case state.KindInCluster:
			continue // a firewall mark of its own (marks.go), no address
		}
		at[s.Key.Addr] = append(at[s.Key.Addr], s.Key)
		r := rankOf(s.Origin.Kind)
		if i := slices.IndexFunc(se.roles, func(o role) bool { return o.addr == s.Key.Addr }); i < 0 {
			se.roles = append(se.roles, role{addr: s.Key.Addr, rank: r})
		} else if r < se.roles[i].rank {
			se.roles[i].rank = r
		}
	}
	byKey := map[state.VSKey][]int32{}
	tie := func(ks []state.VSKey, ref int32) {
		if len(ks) == 0 {
			se.untied = append(se.untied, ref)
		}
		for _, k := range ks {
			byKey[k] = append(byKey[k], ref)
		}
	}
	for i, m := range f.Members {
		switch e := m.Entry; {
		case e.Addr.IsValid() && e.Port != 0:
			if k := (state.VSKey{Proto: e.Proto, Addr: e.Addr, Port: e.Port}); keys[k] {
				tie([]state.VSKey{k}, int32(i))
			} else {
				tie(nil, int32(i))
			}
		case e.Addr.IsValid():
			tie(at[e.Addr], int32(i))
		default:
			tie(nodePorts[e.Port], int32(i))
		}
	}
	for i, a := range f.Addresses {
		tie(at[a], ^int32(i))
	}
	for k, refs := range byKey {
		se.tied = append(se.tied, tiedSpan{key: k, start: int32(len(se.refs)), end: int32(len(se.refs) + len(refs))})
		se.refs = append(se.refs, refs...)
	}
	slices.SortFunc(se.tied, func(a, b tiedSpan) int { return cmpKeys(a.key, b.key) })
	return se
}

// bestRank is the best role any Service uses a for (numRanks: none).
func (x *Index) bestRank(a netip.Addr) int {
	for i, n := range x.ranks[a] {
		if n > 0 {
			return i
		}
	}
	return numRanks
}

// eligible says whether a claim's role on its address is the best one
// (NodePort and firewall-mark virtual servers have no role on an address).
func (x *Index) eligible(c *claim) bool {
	k := c.vs.Origin.Kind
	return k == state.KindNodePort || k == state.KindInCluster || x.bestRank(c.vs.Key.Addr) == c.rank
}

func (x *Index) add(service string, f *Fragment, t *Touched) {
	x.frags[service] = f
	if f.HealthCheckNodePort != 0 {
		x.claimHealthCheck(service, f.HealthCheckNodePort, +1)
	}
	se := splitExtras(f)
	x.extras[service] = se
	x.count(se, se.untied, +1, t)
	affected := map[state.VSKey]struct{}{}
	for _, r := range se.roles {
		x.setRank(r.addr, r.rank, +1, affected)
	}
	for _, s := range f.Services {
		c := x.claims[s.Key]
		if c == nil {
			c = &contest{}
			x.claims[s.Key] = c
		}
		if slices.ContainsFunc(c.claims, func(o *claim) bool { return o.service == service }) {
			continue // the same virtual server twice in one Service: the first counts
		}
		cl := &claim{service: service, vs: s, rank: rankOf(s.Origin.Kind), created: f.Created}
		i, _ := slices.BinarySearchFunc(c.claims, cl, func(a, b *claim) int {
			if a.before(b) {
				return -1
			}
			return 1
		})
		c.claims = slices.Insert(c.claims, i, cl)
		if s.Origin.Kind != state.KindNodePort && s.Origin.Kind != state.KindInCluster {
			if ks := x.keysAt[s.Key.Addr]; !slices.Contains(ks, s.Key) {
				x.keysAt[s.Key.Addr] = append(ks, s.Key)
			}
		}
		affected[s.Key] = struct{}{}
	}
	for k := range affected {
		x.settle(k, service, t)
	}
}

func (x *Index) remove(service string, f *Fragment, t *Touched) {
	if f.HealthCheckNodePort != 0 {
		x.claimHealthCheck(service, f.HealthCheckNodePort, -1)
	}
	se := x.extras[service]
	affected := map[state.VSKey]struct{}{}
	for _, s := range f.Services {
		if c := x.claims[s.Key]; c != nil {
			c.claims = slices.DeleteFunc(c.claims, func(o *claim) bool { return o.service == service })
		}
		affected[s.Key] = struct{}{}
	}
	for _, r := range se.roles {
		x.setRank(r.addr, r.rank, -1, affected)
	}
	for k := range affected {
		x.settle(k, service, t)
	}
	x.count(se, se.untied, -1, t)
	delete(x.extras, service)
	delete(x.frags, service)
}

// setRank counts a Service's use of address a in role r; when the best
// role of a changes, every virtual server on a must be settled again.
func (x *Index) setRank(a netip.Addr, r, delta int, affected map[state.VSKey]struct{}) {
	before := x.bestRank(a)
	counts := x.ranks[a]
	counts[r] += int32(delta)
	if counts == ([numRanks]int32{}) {
		delete(x.ranks, a)
	} else {
		x.ranks[a] = counts
	}
	if x.bestRank(a) != before {
		for _, k := range x.keysAt[a] {
			affected[k] = struct{}{}
		}
	}
}

// settle picks the winner of a virtual server and moves the extras that go
// with it from the old winner to the new one. Services other than changing
// whose win or loss changed are noted in conflictChanged.
func (x *Index) settle(k state.VSKey, changing string, t *Touched) {
	t.Services[k] = struct{}{}
	c := x.claims[k]
	if c == nil {
		return
	}
	var win *claim
	for _, cl := range c.claims {
		if x.eligible(cl) {
			win = cl
			break
		}
	}
	if win != c.winner {
		if c.winner != nil {
			if se := x.extras[c.winner.service]; se != nil {
				x.count(se, se.tiedTo(k), -1, t)
			}
		}
		if win != nil {
			se := x.extras[win.service]
			x.count(se, se.tiedTo(k), +1, t)
		}
		for _, cl := range c.claims {
			if cl.service != changing {
				x.conflictChanged[cl.service] = struct{}{}
			}
		}
		c.winner = win
	}
	if len(c.claims) == 0 {
		delete(x.claims, k)
		if ks := slices.DeleteFunc(x.keysAt[k.Addr], func(o state.VSKey) bool { return o == k }); len(ks) == 0 {
			delete(x.keysAt, k.Addr)
		} else {
			x.keysAt[k.Addr] = ks
		}
	}
}

// Errors returns a Service's invalid fields and the virtual servers it lost
// to another Service, with why.
func (x *Index) Errors(service string) []error {
	f := x.frags[service]
	if f == nil {
		return nil
	}
	out := slices.Clone(f.Errors)
	if err := x.healthCheckConflict(service, f); err != nil {
		out = append(out, err)
	}
	for _, s := range f.Services {
		c := x.claims[s.Key]
		if c == nil || (c.winner != nil && c.winner.service == service) {
			continue
		}
		i := slices.IndexFunc(c.claims, func(o *claim) bool { return o.service == service })
		if i < 0 {
			continue // a second claim of its own on the same virtual server
		}
		mine := c.claims[i]
		if !x.eligible(mine) {
			holder := x.holder(s.Key.Addr)
			out = append(out, fmt.Errorf("Service %s: %s %s is the %s of Service %s; not programmed (a ClusterIP comes before a LoadBalancer ingress IP, which comes before an externalIP)",
				service, roleNames[mine.rank], s.Key.Addr, roleNames[x.bestRank(s.Key.Addr)], holder))
			continue
		}
		w := c.winner
		why := "it sorts first by namespace/name"
		switch {
		case w.rank < mine.rank:
			why = "its " + roleNames[w.rank] + " comes before an " + roleNames[mine.rank]
		case w.created.Before(mine.created):
			why = "it is older"
		}
		out = append(out, fmt.Errorf("Service %s: virtual server %s is also wanted by Service %s, which keeps it (%s)", service, s.Key, w.service, why))
	}
	return out
}

// holder names a Service that uses a in its best role.
func (x *Index) holder(a netip.Addr) string {
	best := x.bestRank(a)
	var names []string
	for _, k := range x.keysAt[a] {
		for _, cl := range x.claims[k].claims {
			if cl.rank == best && cl.vs.Origin.Kind != state.KindNodePort {
				names = append(names, cl.service)
			}
		}
	}
	if len(names) == 0 {
		return "?"
	}
	return slices.Min(names)
}
