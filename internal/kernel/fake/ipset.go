package fake

import (
	"bytes"
	"sync"
	"syscall"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// IPSet is an in-memory set table.
type IPSet struct {
	mu   sync.Mutex
	sets map[string]*state.Set
	// InUse reports whether a rule references a set (destroy then fails with
	// EBUSY); wire it to an IPTables fake.
	InUse  func(name string) bool
	writes int
}

var _ kernel.IPSet = (*IPSet)(nil)

// NewIPSet returns an empty set table.
func NewIPSet() *IPSet { return &IPSet{sets: map[string]*state.Set{}} }

// List implements kernel.IPSet.
func (f *IPSet) List() (map[string]*state.Set, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]*state.Set, len(f.sets))
	for n, s := range f.sets {
		out[n] = s.Clone()
	}
	return out, nil
}

// Create implements kernel.IPSet.
func (f *IPSet) Create(spec state.SetSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if _, ok := f.sets[spec.Name]; ok {
		return syscall.EEXIST
	}
	f.sets[spec.Name] = state.NewSet(spec)
	return nil
}

// Destroy implements kernel.IPSet.
func (f *IPSet) Destroy(name string) error {
	inUse := f.InUse != nil && f.InUse(name) // asked before locking: InUse may lock the rules
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if _, ok := f.sets[name]; !ok {
		return syscall.ENOENT
	}
	if inUse {
		return kernel.ErrIPSetBusy
	}
	delete(f.sets, name)
	return nil
}

// Exec implements kernel.IPSet.
func (f *IPSet) Exec(ops []kernel.SetOp) []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	errs := make([]error, len(ops))
	for i, op := range ops {
		f.writes++
		set := f.sets[op.Set.Name]
		if set == nil {
			errs[i] = syscall.ENOENT
			continue
		}
		// as in the kernel, a member's mark is no part of its identity
		have, present := sameMember(set, op.Entry)
		switch {
		case op.Add && present && op.Replace:
			delete(set.Entries, have)
			set.Entries[op.Entry] = struct{}{}
		case op.Add == present:
			errs[i] = kernel.ErrIPSetExist
		case op.Add:
			set.Entries[op.Entry] = struct{}{}
		default:
			delete(set.Entries, have)
		}
	}
	return errs
}

// sameMember finds the member of set that e names, whatever its mark.
func sameMember(set *state.Set, e state.SetEntry) (state.SetEntry, bool) {
	if _, ok := set.Entries[e]; ok || !set.Marks {
		return e, ok
	}
	for have := range set.Entries {
		if have.Key() == e.Key() {
			return have, true
		}
	}
	return state.SetEntry{}, false
}

// Save renders the members in `ipset save` add-line syntax.
func (f *IPSet) Save() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := state.New()
	s.Sets = f.sets
	var b bytes.Buffer
	_ = s.WriteSetMembers(&b)
	return b.String()
}

// Writes returns how many write operations were executed.
func (f *IPSet) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}
