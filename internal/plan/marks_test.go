package plan

import (
	"net/netip"
	"slices"
	"strings"
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

// TestDiffFirewallMarkServers: an unwanted firewall-mark virtual server is
// deleted only when our mark set holds its mark (a hand-made one is left
// alone); a UDP one loses a removed real server at once, with the conntrack
// entries of every address and port that leads to it.
func TestDiffFirewallMarkServers(t *testing.T) {
	spec := state.SetSpec{Name: "KUBE-EXTERNAL-LOCAL-MARK", Type: state.HashIPPort, Family: state.IPv4, Marks: true}
	member := func(addr string, port uint16, mark uint32) state.SetEntry {
		return state.SetEntry{Addr: netip.MustParseAddr(addr), Proto: state.UDP, Port: port, Mark: mark, MarkMask: 0x3fff}
	}
	fwm := func(mark uint32, rss ...state.RealServer) *state.Service {
		return svc(state.VirtualServer{Key: state.FWMarkKey(mark, state.IPv4), Scheduler: "rr"}, rss...)
	}
	a, b := rs("10.244.1.2", 53, 1), rs("10.244.2.2", 53, 1)
	have := state.New()
	have.Sets[spec.Name] = state.NewSet(spec)
	for _, e := range []state.SetEntry{member("198.51.100.10", 53, 1), member("10.0.0.1", 30053, 1), member("198.51.100.11", 53, 2)} {
		have.Sets[spec.Name].Entries[e] = struct{}{}
	}
	have.Services[state.FWMarkKey(1, state.IPv4)] = fwm(1, a, b)
	have.Services[state.FWMarkKey(2, state.IPv4)] = fwm(2, a)
	have.Services[state.FWMarkKey(7, state.IPv4)] = fwm(7, a) // made by hand
	want := state.New()
	want.Sets[spec.Name] = state.NewSet(spec)
	for _, e := range []state.SetEntry{member("198.51.100.10", 53, 1), member("10.0.0.1", 30053, 1)} {
		want.Sets[spec.Name].Entries[e] = struct{}{}
	}
	want.Services[state.FWMarkKey(1, state.IPv4)] = fwm(1, a)
	got := opStrings(Diff(want, have, Options{ConnsKnown: true}))
	wantOps := []string{
		"del-entry KUBE-EXTERNAL-LOCAL-MARK 198.51.100.11,udp:53 skbmark 0x2/0x3fff",
		"del-rs -d -f 1 -r 10.244.2.2:53",
		"flush-conntrack UDP 10.0.0.1:30053 -> 10.244.2.2",
		"flush-conntrack UDP 198.51.100.10:53 -> 10.244.2.2",
		"flush-conntrack UDP 198.51.100.11:53",
		"del-vs -D -f 2",
	}
	slices.Sort(got)
	slices.Sort(wantOps)
	if !slices.Equal(got, wantOps) {
		t.Errorf("ops\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(wantOps, "\n  "))
	}
}
