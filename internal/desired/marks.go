package desired

import (
	"fmt"
	"hash/fnv"
	"maps"
	"math/bits"
	"slices"
	"sort"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// markTable assigns the marks of in-cluster firewall-mark virtual servers
// (incluster.go), one per Service port, unique on the node. A port keeps its
// mark for as long as it wants one, so no change to another Service ever
// moves it (its virtual server would be re-created and its connections
// lost); a new port starts at a slot hashed from its name, so the same port
// usually has the same mark on every node. A restart finds the marks in the
// kernel (AdoptMarks) instead of assigning them anew.
type markTable struct {
	mask    uint32
	shift   int
	byOwner map[string]uint32 // "namespace/name\x00port" → mark
	byMark  map[uint32]string
	// hints are marks owners had in a previous table (InheritMarks).
	hints map[string]uint32
	// reserved are marks of firewall-mark virtual servers that are not ours.
	reserved map[uint32]bool
}

// newMarkTable returns an empty table; its mask is set by the first
// fragment that wants a mark (all of an index's fragments share one config).
func newMarkTable() *markTable {
	return &markTable{byOwner: map[string]uint32{}, byMark: map[uint32]string{}, hints: map[string]uint32{}, reserved: map[uint32]bool{}}
}

func (t *markTable) setMask(mask uint32) {
	if t.mask == 0 {
		t.mask, t.shift = mask, bits.TrailingZeros32(mask)
	}
}

func markOwner(service, port string) string { return service + "\x00" + port }

// free reports whether mark m may be given to a new owner.
func (t *markTable) free(m uint32) bool {
	_, used := t.byMark[m]
	return m != 0 && m&^t.mask == 0 && !used && !t.reserved[m]
}

// get returns owner's mark, assigning one if it has none (0: none is left).
func (t *markTable) get(owner string) uint32 {
	if m, ok := t.byOwner[owner]; ok {
		return m
	}
	if h := t.hints[owner]; t.free(h) {
		t.take(owner, h)
		return h
	}
	n := t.mask >> t.shift
	h := fnv.New32a()
	_, _ = h.Write([]byte(owner))
	start := h.Sum32() % n
	for i := uint32(0); i < n; i++ {
		if m := ((start+i)%n + 1) << t.shift; t.free(m) {
			t.take(owner, m)
			return m
		}
	}
	return 0
}

func (t *markTable) take(owner string, m uint32) {
	t.byOwner[owner], t.byMark[m] = m, owner
}

func (t *markTable) release(owner string) {
	if m, ok := t.byOwner[owner]; ok {
		delete(t.byOwner, owner)
		delete(t.byMark, m)
	}
}

// resolveMarks replaces a new fragment's placeholders with its ports' marks,
// assigning marks to new ports; old is the Service's previous fragment, whose
// ports that are gone give their marks back.
func (x *Index) resolveMarks(service string, f, old *Fragment) {
	if old != nil {
		for _, port := range old.MarkPorts {
			if f == nil || !slices.Contains(f.MarkPorts, port) {
				x.marks.release(markOwner(service, port))
			}
		}
	}
	if f == nil || len(f.MarkPorts) == 0 {
		return
	}
	x.marks.setMask(f.MarkMask)
	actual := make([]uint32, len(f.MarkPorts))
	for i, port := range f.MarkPorts {
		if actual[i] = x.marks.get(markOwner(service, port)); actual[i] == 0 {
			f.Errors = append(f.Errors, fmt.Errorf("Service %s: port %s: no firewall mark left for its in-cluster virtual server (%d in use): in-cluster traffic gets only this node's endpoints",
				service, port, len(x.marks.byOwner)))
		}
	}
	rewriteMarks(f, func(placeholder uint32) uint32 { return actual[placeholder-1] })
}

// rewriteMarks maps the marks of f's firewall-mark virtual servers and mark
// set members through to; a result of 0 drops the object.
func rewriteMarks(f *Fragment, to func(uint32) uint32) {
	services := f.Services[:0]
	for _, s := range f.Services {
		if s.Key.FWMark != 0 {
			if s.Key.FWMark = to(s.Key.FWMark); s.Key.FWMark == 0 {
				continue
			}
		}
		services = append(services, s)
	}
	f.Services = services
	members := f.Members[:0]
	for _, m := range f.Members {
		if m.Entry.MarkMask != 0 {
			if m.Entry.Mark = to(m.Entry.Mark); m.Entry.Mark == 0 {
				continue
			}
		}
		members = append(members, m)
	}
	f.Members = members
}

// InheritMarks makes the marks of old's Service ports the first choice of
// the same ports here: an index rebuilt (the node or config changed) keeps
// every mark. Call it before adding fragments.
func (x *Index) InheritMarks(old *Index) {
	if old == nil {
		return
	}
	for owner, m := range old.marks.byOwner {
		x.marks.hints[owner] = m
	}
	for m := range old.marks.reserved {
		x.marks.reserved[m] = true
	}
}

// AdoptMarks takes the marks the kernel holds for the Service ports (the
// members of KUBE-EXTERNAL-LOCAL-MARK of observed), so that a restart keeps
// every firewall-mark virtual server, and keeps away from the marks of
// firewall-mark virtual servers that are not ours. It re-marks the Services
// that need it and returns what they touched (old marks and new).
func (x *Index) AdoptMarks(observed *state.State) *Touched {
	seen := map[state.SetEntry]uint32{} // member key → mark in the kernel
	ours := map[uint32]bool{}
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		if set := observed.Sets[SetName(SetExternalLocalMarks, f)]; set != nil {
			for e := range set.Entries {
				seen[e.Key()] = e.Mark
				ours[e.Mark] = true
			}
		}
	}
	for k := range observed.Services {
		if k.FWMark != 0 && !ours[k.FWMark] {
			x.marks.reserved[k.FWMark] = true
		}
	}
	// each owner's mark in the kernel: that of any of its members
	want := map[string]uint32{}
	for _, f := range x.frags {
		for _, m := range f.Members {
			if got, ok := seen[m.Entry.Key()]; ok && m.Entry.MarkMask != 0 {
				want[x.marks.byMark[m.Entry.Mark]] = got
			}
		}
	}
	return x.remark(want)
}

// remark gives owners the marks in want where possible (in owner order, so
// that the result does not depend on map order), moves owners whose mark is
// reserved or taken, and re-adds the fragments whose marks changed.
func (x *Index) remark(want map[string]uint32) *Touched {
	t := NewTouched()
	owners := make([]string, 0, len(x.marks.byOwner))
	for o := range x.marks.byOwner {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	old := maps.Clone(x.marks.byOwner)
	x.marks.byOwner, x.marks.byMark = map[string]uint32{}, map[uint32]string{}
	for _, o := range owners {
		if m := want[o]; x.marks.free(m) {
			x.marks.take(o, m)
		}
	}
	for _, o := range owners {
		if _, done := x.marks.byOwner[o]; done {
			continue
		}
		if m := old[o]; x.marks.free(m) {
			x.marks.take(o, m)
		} else {
			x.marks.get(o)
		}
	}
	changed := map[string]map[uint32]uint32{} // service → old mark → new
	for _, o := range owners {
		if n := x.marks.byOwner[o]; n != old[o] {
			service, _, _ := strings.Cut(o, "\x00")
			if changed[service] == nil {
				changed[service] = map[uint32]uint32{}
			}
			changed[service][old[o]] = n
		}
	}
	for service, to := range changed {
		f := x.frags[service]
		x.remove(service, f, t)
		rewriteMarks(f, func(m uint32) uint32 {
			if n, ok := to[m]; ok {
				return n
			}
			return m
		})
		x.add(service, f, t)
	}
	return t
}
