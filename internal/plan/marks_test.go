package plan

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// TestDiffMarkChange: a member's mark is no part of its identity in the
// kernel, so a member whose mark changes is one replacing add (ipset add
// -exist), never an add (which would fail: the member is there) and a delete
// (which would remove it whatever its mark).
func TestDiffMarkChange(t *testing.T) {
	spec := state.SetSpec{Name: "KUBE-EXTERNAL-LOCAL-MARK", Type: state.HashIPPort, Family: state.IPv4, Marks: true}
	key := state.SetEntry{Addr: netip.MustParseAddr("198.51.100.10"), Proto: state.TCP, Port: 80, MarkMask: 0x3fff}
	one, two := key, key
	one.Mark, two.Mark = 1, 2
	gone := state.SetEntry{Addr: netip.MustParseAddr("198.51.100.11"), Proto: state.TCP, Port: 80, Mark: 3, MarkMask: 0x3fff}
	mk := func(es ...state.SetEntry) *state.State {
		s := state.New()
		s.Sets[spec.Name] = state.NewSet(spec)
		for _, e := range es {
			s.Sets[spec.Name].Entries[e] = struct{}{}
		}
		return s
	}
	want, have := mk(two), mk(one, gone)
	scope := state.NewScope()
	for _, e := range []state.SetEntry{one, two, gone} {
		scope.Members[state.SetMember{Set: spec.Name, Entry: e}] = struct{}{}
	}
	for name, opt := range map[string]Options{"full": {}, "partial": {Scope: scope}} {
		p := Diff(want, have, opt)
		got := opStrings(p)
		w := []string{
			"add-entry KUBE-EXTERNAL-LOCAL-MARK 198.51.100.10,tcp:80 skbmark 0x2/0x3fff",
			"del-entry KUBE-EXTERNAL-LOCAL-MARK 198.51.100.11,tcp:80 skbmark 0x3/0x3fff",
		}
		if !slices.Equal(got, w) {
			t.Errorf("%s: ops %q, want %q", name, got, w)
			continue
		}
		if !p.Ops[0].Replace {
			t.Errorf("%s: the add is not a replacing one", name)
		}
		believed := mk(one, gone)
		for _, op := range p.Ops {
			Record(believed, op, nil)
		}
		if got := believed.Sets[spec.Name].SortedEntries(); !slices.Equal(got, []state.SetEntry{two}) {
			t.Errorf("%s: believed members %v after the plan, want only %v", name, got, two)
		}
	}
}
