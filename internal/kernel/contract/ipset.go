package contract

import (
	"bytes"
	"net/netip"
	"syscall"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// IPSet runs the ipset contract. open returns the implementation with no
// set named KUBE-CONTRACT-*, once per case; the cases destroy their sets.
func IPSet(t *testing.T, open func(t *testing.T) kernel.IPSet) {
	spec := state.SetSpec{Name: "KUBE-CONTRACT-A", Type: state.HashIPPort, Family: state.IPv4}
	e1 := state.SetEntry{Addr: netip.MustParseAddr("10.96.0.1"), Proto: state.TCP, Port: 80}
	e2 := state.SetEntry{Addr: netip.MustParseAddr("10.96.0.2"), Proto: state.TCP, Port: 80}
	exists := pred("already exists", kernel.AlreadyExists)
	gone := pred("already gone", kernel.AlreadyGone)
	t.Run("create twice, destroy twice", func(t *testing.T) {
		s := open(t)
		if err := s.Create(spec); err != nil {
			t.Fatalf("Create: %v", err)
		}
		check(t, "Create again", []error{s.Create(spec)}, []want{is(syscall.EEXIST)})
		check(t, "Destroy", []error{s.Destroy(spec.Name), s.Destroy(spec.Name)}, []want{none, gone})
	})
	t.Run("members", func(t *testing.T) {
		s := open(t)
		if err := s.Create(spec); err != nil {
			t.Fatalf("Create: %v", err)
		}
		t.Cleanup(func() { _ = s.Destroy(spec.Name) })
		errs := s.Exec([]kernel.SetOp{{Add: true, Set: spec, Entry: e1}, {Add: true, Set: spec, Entry: e1},
			{Set: spec, Entry: e2}, {Add: true, Set: spec, Entry: e2}, {Set: spec, Entry: e2}})
		check(t, "Exec", errs, []want{none, exists, gone, none, none})
		sameLines(t, "List", members(t, s, spec.Name), "add KUBE-CONTRACT-A 10.96.0.1,tcp:80")
	})
	t.Run("no such set", func(t *testing.T) {
		s := open(t)
		missing := state.SetSpec{Name: "KUBE-CONTRACT-MISSING", Type: state.HashIPPort, Family: state.IPv4}
		errs := s.Exec([]kernel.SetOp{{Add: true, Set: missing, Entry: e1}})
		check(t, "Exec", errs, []want{is(syscall.ENOENT)})
	})
}

// members renders one set's members in ipset save form.
func members(t *testing.T, s kernel.IPSet, name string) string {
	t.Helper()
	sets, err := s.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	st := state.New()
	if set := sets[name]; set != nil {
		st.Sets[name] = set
	}
	var b bytes.Buffer
	if err := st.WriteSetMembers(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
