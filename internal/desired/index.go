package desired

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Index holds the desired state as the union of per-Service fragments over a
// base (link, sets, rules, sysctls). Replacing one Service's fragment costs
// only that fragment and reports exactly which kernel objects it touched.
//
// Objects are reference-counted: two Services may bind the same external IP.
// A virtual server claimed by two Services goes to the Service whose
// namespace/name sorts first, and the other gets a conflict error.
type Index struct {
	base    *state.State
	frags   map[string]*Fragment
	claims  map[state.VSKey][]claim // sorted by service key
	addrs   map[netip.Addr]int
	members map[state.SetMember]int
	setSpec map[string]state.SetSpec
	// hcClaims are the Services wanting each healthCheckNodePort, sorted;
	// the first one keeps it.
	hcClaims map[uint16][]string
	// conflictChanged holds Services whose conflicts with others may have
	// changed because another Service was replaced (see TakeConflictChanges).
	conflictChanged map[string]struct{}
	// marks assigns the marks of in-cluster firewall-mark virtual servers.
	marks *markTable
	// markClaims are the Services wanting each member of a set with marks,
	// by the member without its mark (which the kernel keys it by), sorted:
	// the first one's mark is the member's.
	markClaims map[state.SetMember][]markClaim
	// winners holds members whose winning claim changed (see claimMark).
	winners *Touched
}

type claim struct {
	service string
	vs      *state.Service
}

// Touched names the kernel objects a change may have altered.
type Touched = state.Scope

// NewTouched returns an empty Touched.
func NewTouched() *Touched { return state.NewScope() }

func touch(t *Touched, f *Fragment) {
	if f == nil {
		return
	}
	for _, s := range f.Services {
		t.Services[s.Key] = struct{}{}
	}
	for _, a := range f.Addresses {
		t.Addresses[a] = struct{}{}
	}
	for _, m := range f.Members {
		t.Members[m] = struct{}{}
	}
}

// NewIndex returns an index over base, the state every sync wants regardless
// of Services (see Base).
func NewIndex(base *state.State) *Index {
	x := &Index{base: base, frags: map[string]*Fragment{}, claims: map[state.VSKey][]claim{},
		addrs: map[netip.Addr]int{}, members: map[state.SetMember]int{}, setSpec: map[string]state.SetSpec{},
		hcClaims: map[uint16][]string{}, conflictChanged: map[string]struct{}{}, marks: newMarkTable(),
		markClaims: map[state.SetMember][]markClaim{}, winners: NewTouched()}
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
// old and new fragments touch to t.
func (x *Index) Replace(service string, f *Fragment, t *Touched) {
	old := x.frags[service]
	if old != nil {
		x.apply(service, old, -1)
	}
	x.resolveMarks(service, f, old)
	if f != nil {
		x.frags[service] = f
		x.apply(service, f, +1)
	} else {
		delete(x.frags, service)
	}
	touch(t, old)
	touch(t, f)
	t.Merge(x.winners)
	x.winners = NewTouched()
}

func (x *Index) apply(service string, f *Fragment, delta int) {
	for _, s := range f.Services {
		x.claim(service, s, delta)
	}
	if f.HealthCheckNodePort != 0 {
		x.claimHealthCheck(service, f.HealthCheckNodePort, delta)
	}
	for _, a := range f.Addresses {
		if x.addrs[a] += delta; x.addrs[a] <= 0 {
			delete(x.addrs, a)
		}
	}
	for _, m := range f.Members {
		if _, known := x.setSpec[m.Set]; !known {
			continue // a set of a family this node does not serve
		}
		if m.Entry.MarkMask != 0 {
			x.claimMark(service, m, delta)
			continue
		}
		if x.members[m] += delta; x.members[m] <= 0 {
			delete(x.members, m)
		}
	}
}

func (x *Index) claim(service string, s *state.Service, delta int) {
	cs := x.claims[s.Key]
	for _, c := range cs {
		if c.service != service {
			x.conflictChanged[c.service] = struct{}{}
		}
	}
	i := slices.IndexFunc(cs, func(c claim) bool { return c.service == service })
	switch {
	case delta < 0 && i >= 0:
		cs = slices.Delete(cs, i, i+1)
	case delta > 0 && i >= 0:
		cs[i].vs = s // a Service claiming the same key twice: last port wins
	case delta > 0:
		cs = append(cs, claim{service: service, vs: s})
		slices.SortFunc(cs, func(a, b claim) int {
			switch {
			case a.service < b.service:
				return -1
			case a.service > b.service:
				return 1
			}
			return 0
		})
	}
	if len(cs) == 0 {
		delete(x.claims, s.Key)
	} else {
		x.claims[s.Key] = cs
	}
}

// Wanted returns the virtual server (with its real servers) that wins key, if any.
func (x *Index) Wanted(k state.VSKey) (*state.Service, bool) {
	if cs := x.claims[k]; len(cs) > 0 {
		return cs[0].vs, true
	}
	return nil, false
}

// Keys returns every Service with a fragment.
func (x *Index) Keys() []string {
	out := make([]string, 0, len(x.frags))
	for k := range x.frags {
		out = append(out, k)
	}
	return out
}

// Errors returns a Service's invalid fields and the virtual servers it lost
// to another Service.
func (x *Index) Errors(service string) []error {
	f := x.frags[service]
	if f == nil {
		return nil
	}
	out := slices.Clone(f.Errors)
	for _, s := range f.Services {
		if cs := x.claims[s.Key]; len(cs) > 1 && cs[0].service != service {
			out = append(out, fmt.Errorf("Service %s: virtual server %s is also wanted by Service %s, which keeps it", service, s.Key, cs[0].service))
		}
	}
	if err := x.healthCheckConflict(service, f); err != nil {
		out = append(out, err)
	}
	return out
}

// State materializes the whole desired state.
func (x *Index) State() *state.State {
	s := x.base.Clone()
	for k, cs := range x.claims {
		s.Services[k] = cs[0].vs.Clone()
	}
	for a := range x.addrs {
		s.Addresses[a] = struct{}{}
	}
	for m := range x.members {
		s.Sets[m.Set].Entries[m.Entry] = struct{}{}
	}
	for _, cs := range x.markClaims {
		m := cs[0].m
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
		if cs := x.claims[k]; len(cs) > 0 {
			s.Services[k] = cs[0].vs
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
		if x.members[m] > 0 || x.markWinner(m) {
			set.Entries[m.Entry] = struct{}{}
		}
	}
	return s
}
