package desired

import (
	"net/netip"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Index holds the desired state as the union of per-Service fragments over a
// base (link, sets, rules, sysctls). Replacing one Service's fragment costs
// only that fragment (and the Services it contends with) and reports exactly
// which kernel objects it touched.
//
// Objects are reference-counted: two Services may share an external IP on
// different ports. Services that want the same virtual server, or the same
// address in different roles, are settled by precedence (see claims.go):
// the loser gets neither the virtual server nor the addresses and set
// members that go with it, and an error saying who keeps it.
type Index struct {
	base  *state.State
	frags map[string]*Fragment
	// extras are each Service's addresses and set members, split into those
	// that go with one of its virtual servers and the rest.
	extras map[string]*serviceExtras
	claims map[state.VSKey]*contest
	// ranks counts, per address, the Services that use it in each role.
	ranks map[netip.Addr][numRanks]int32
	// keysAt lists the claimed virtual servers at each address.
	keysAt  map[netip.Addr][]state.VSKey
	addrs   map[netip.Addr]int
	members map[state.SetMember]int
	setSpec map[string]state.SetSpec
	// hcClaims are the Services wanting each healthCheckNodePort, sorted;
	// the first one keeps it.
	hcClaims map[uint16][]string
	// conflictChanged holds Services whose wins and losses against others
	// may have changed because another Service was replaced (see
	// TakeConflictChanges).
	conflictChanged map[string]struct{}
	// marks assigns the marks of in-cluster firewall-mark virtual servers.
	marks *markTable
}

// Touched names the kernel objects a change may have altered.
type Touched = state.Scope

// NewTouched returns an empty Touched.
func NewTouched() *Touched { return state.NewScope() }

// NewIndex returns an index over base, the state every sync wants regardless
// of Services (see Base).
func NewIndex(base *state.State) *Index {
	x := &Index{base: base, frags: map[string]*Fragment{}, extras: map[string]*serviceExtras{}, claims: map[state.VSKey]*contest{},
		ranks: map[netip.Addr][numRanks]int32{}, keysAt: map[netip.Addr][]state.VSKey{},
		addrs: map[netip.Addr]int{}, members: map[state.SetMember]int{}, setSpec: map[string]state.SetSpec{},
		hcClaims: map[uint16][]string{}, conflictChanged: map[string]struct{}{}, marks: newMarkTable()}
	for name, set := range base.Sets {
		x.setSpec[name] = set.SetSpec
	}
	return x
}

// Len returns the number of Services with a fragment.
func (x *Index) Len() int { return len(x.frags) }

// Fragment returns the current fragment of a Service, or nil.
func (x *Index) Fragment(service string) *Fragment { return x.frags[service] }

// Replace sets the fragment of a Service (nil removes it) and adds what the
// old and new fragments touch to t, and what changed hands between other
// Services because of it. The new fragment's firewall-mark placeholders are
// replaced by the marks of its ports (marks.go).
func (x *Index) Replace(service string, f *Fragment, t *Touched) {
	old := x.frags[service]
	if old != nil {
		x.remove(service, old, t)
	}
	x.resolveMarks(service, f, old)
	if f != nil {
		x.add(service, f, t)
	}
}

// Keys returns every Service with a fragment.
func (x *Index) Keys() []string {
	out := make([]string, 0, len(x.frags))
	for k := range x.frags {
		out = append(out, k)
	}
	return out
}

// count adds delta to the reference counts of a Service's addresses and
// set members that refs name (see serviceExtras).
func (x *Index) count(se *serviceExtras, refs []int32, delta int, t *Touched) {
	for _, r := range refs {
		if r < 0 {
			a := se.f.Addresses[^r]
			if x.addrs[a] += delta; x.addrs[a] <= 0 {
				delete(x.addrs, a)
			}
			t.Addresses[a] = struct{}{}
			continue
		}
		m := se.f.Members[r]
		if _, known := x.setSpec[m.Set]; !known {
			continue // a set of a family this node does not serve
		}
		if x.members[m] += delta; x.members[m] <= 0 {
			delete(x.members, m)
		}
		t.Members[m] = struct{}{}
	}
}

// Wanted returns the virtual server (with its real servers) that wins key, if any.
func (x *Index) Wanted(k state.VSKey) (*state.Service, bool) {
	if c := x.claims[k]; c != nil && c.winner != nil {
		return c.winner.vs, true
	}
	return nil, false
}

// State materializes the whole desired state.
func (x *Index) State() *state.State {
	s := x.base.Clone()
	for k, c := range x.claims {
		if c.winner != nil {
			s.Services[k] = c.winner.vs.Clone()
		}
	}
	for a := range x.addrs {
		s.Addresses[a] = struct{}{}
	}
	for m := range x.members {
		s.Sets[m.Set].Entries[m.Entry] = struct{}{}
	}
	return s
}

// Partial returns the desired value of each touched object: touched objects
// absent from the result are not wanted any more. Sets are present (empty but
// for touched members) so that the planner knows their types.
func (x *Index) Partial(t *Touched) *state.State {
	s := state.New()
	s.Link = x.base.Link
	for k := range t.Services {
		if c := x.claims[k]; c != nil && c.winner != nil {
			s.Services[k] = c.winner.vs
		}
	}
	for a := range t.Addresses {
		if x.addrs[a] > 0 {
			s.Addresses[a] = struct{}{}
		}
	}
	for m := range t.Members {
		spec, known := x.setSpec[m.Set]
		if !known {
			continue
		}
		set := s.Sets[m.Set]
		if set == nil {
			set = state.NewSet(spec)
			s.Sets[m.Set] = set
		}
		if x.members[m] > 0 {
			set.Entries[m.Entry] = struct{}{}
		}
	}
	return s
}
