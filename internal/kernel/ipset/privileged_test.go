//go:build linux && privileged

package ipset

import (
	"errors"
	"net/netip"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch/nstest"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { nstest.Main(m) }

func open(t *testing.T) *IPSet {
	t.Helper()
	s := New(Config{})
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ops(add bool, spec state.SetSpec, entries []state.SetEntry) []kernel.SetOp {
	var out []kernel.SetOp
	for _, e := range entries {
		out = append(out, kernel.SetOp{Add: add, Set: spec, Entry: e})
	}
	return out
}

func noErrors(t *testing.T, what string, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: op %d: %v", what, i, err)
		}
	}
}

// ipsetSave runs the ipset tool, to check that it reads what we wrote.
func ipsetSave(t *testing.T, name string) []string {
	t.Helper()
	out, err := exec.Command("ipset", "save", name).CombinedOutput()
	if err != nil {
		t.Fatalf("ipset save %s: %v: %s", name, err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func TestPrivilegedAllTypes(t *testing.T) {
	s := open(t)
	for _, m := range members {
		t.Run(m.spec.Name, func(t *testing.T) {
			if err := s.Create(m.spec); err != nil {
				t.Fatalf("create: %v", err)
			}
			if err := s.Create(m.spec); !errors.Is(err, unix.EEXIST) {
				t.Errorf("create again: %v, want EEXIST", err)
			}
			noErrors(t, "add", s.Exec(ops(true, m.spec, m.entries)))

			sets, err := s.List()
			if err != nil {
				t.Fatal(err)
			}
			got := sets[m.spec.Name]
			want := m.spec
			if want.Type == state.BitmapPort {
				want.Family = 0
			}
			if got == nil || got.SetSpec != want {
				t.Fatalf("listed %+v, want %+v", got, want)
			}
			if len(got.Entries) != len(m.entries) {
				t.Errorf("listed %d members, want %d: %v", len(got.Entries), len(m.entries), got.Entries)
			}
			for _, e := range m.entries {
				if _, ok := got.Entries[e]; !ok {
					t.Errorf("member %s not listed; listed %v", e.Format(m.spec.Type), got.Entries)
				}
			}

			// The ipset tool reads the same members.
			var wantSave []string
			for _, e := range m.entries {
				line := "add " + m.spec.Name + " " + e.Format(m.spec.Type)
				if e.Net.IsValid() && e.Net.IsSingleIP() {
					line = strings.TrimSuffix(line, "/"+strconv.Itoa(e.Net.Bits())) // ipset omits /32, /128
				}
				wantSave = append(wantSave, line)
			}
			gotSave := ipsetSave(t, m.spec.Name)
			t.Logf("%s", gotSave[0])
			gotSave = gotSave[1:]
			sort.Strings(wantSave)
			sort.Strings(gotSave)
			if strings.Join(gotSave, "\n") != strings.Join(wantSave, "\n") {
				t.Errorf("ipset save:\n%s\nwant:\n%s", strings.Join(gotSave, "\n"), strings.Join(wantSave, "\n"))
			}

			// Adding twice and deleting an absent member fail with ErrExist.
			for i, err := range s.Exec(ops(true, m.spec, m.entries[:1])) {
				if !errors.Is(err, ErrExist) {
					t.Errorf("add again %d: %v, want ErrExist", i, err)
				}
			}
			noErrors(t, "del", s.Exec(ops(false, m.spec, m.entries)))
			for i, err := range s.Exec(ops(false, m.spec, m.entries[:1])) {
				if !errors.Is(err, ErrExist) {
					t.Errorf("del again %d: %v, want ErrExist", i, err)
				}
			}
			sets, err = s.List()
			if err != nil {
				t.Fatal(err)
			}
			if n := len(sets[m.spec.Name].Entries); n != 0 {
				t.Errorf("%d members left after deleting all", n)
			}
			if err := s.Destroy(m.spec.Name); err != nil {
				t.Errorf("destroy: %v", err)
			}
			if err := s.Destroy(m.spec.Name); !errors.Is(err, unix.ENOENT) {
				t.Errorf("destroy again: %v, want ENOENT", err)
			}
		})
	}
}

func TestPrivilegedErrors(t *testing.T) {
	s := open(t)
	spec := state.SetSpec{Name: "T-ERR", Type: state.HashIPPort, Family: state.IPv4}
	if err := s.Create(spec); err != nil {
		t.Fatal(err)
	}
	defer s.Destroy(spec.Name)

	missing := state.SetSpec{Name: "T-MISSING", Type: state.HashIPPort, Family: state.IPv4}
	errs := s.Exec([]kernel.SetOp{
		{Add: true, Set: spec, Entry: state.SetEntry{Addr: vip, Proto: state.TCP, Port: 1}},
		{Add: true, Set: missing, Entry: state.SetEntry{Addr: vip, Proto: state.TCP, Port: 2}},
		{Add: true, Set: spec, Entry: state.SetEntry{Addr: vip6, Proto: state.TCP, Port: 3}},
		{Add: true, Set: spec, Entry: state.SetEntry{Addr: vip, Proto: state.TCP, Port: 4}},
	})
	if errs[0] != nil || errs[3] != nil {
		t.Errorf("valid ops failed: %v", errs)
	}
	if !errors.Is(errs[1], unix.ENOENT) {
		t.Errorf("add to a missing set: %v, want ENOENT", errs[1])
	}
	if !errors.Is(errs[2], ErrIPAddrIPv4) {
		t.Errorf("IPv6 member in an inet set: %v, want ErrIPAddrIPv4", errs[2])
	}
	t.Logf("errors as reported: %v | %v", errs[1], errs[2])

	// A set referenced by a rule cannot be destroyed.
	if out, err := exec.Command("iptables", "-w", "-A", "INPUT", "-m", "set", "--match-set", spec.Name, "dst,dst", "-j", "ACCEPT").CombinedOutput(); err != nil {
		t.Fatalf("iptables: %v: %s", err, out)
	}
	err := s.Destroy(spec.Name)
	if !errors.Is(err, unix.EBUSY) || !errors.Is(err, ErrBusy) {
		t.Errorf("destroy a referenced set: %v, want ErrBusy/EBUSY", err)
	}
	if out, err := exec.Command("iptables", "-w", "-F", "INPUT").CombinedOutput(); err != nil {
		t.Fatalf("iptables: %v: %s", err, out)
	}
}

func TestPrivilegedLargeSetSpansMessages(t *testing.T) {
	s := open(t)
	spec := state.SetSpec{Name: "T-LARGE", Type: state.HashIPPort, Family: state.IPv4}
	if err := s.Create(spec); err != nil {
		t.Fatal(err)
	}
	defer s.Destroy(spec.Name)
	const n = 20000
	var entries []state.SetEntry
	for i := range n {
		entries = append(entries, state.SetEntry{Addr: netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}), Proto: state.TCP, Port: 80})
	}
	noErrors(t, "add", s.Exec(ops(true, spec, entries)))
	sets, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(sets[spec.Name].Entries); got != n {
		t.Errorf("listed %d members, want %d", got, n)
	}
}

// TestPrivilegedReplaceMark: a member's mark is no part of its identity in
// the kernel: adding the member with another mark fails without Replace and
// changes the mark with it; deleting ignores the mark.
func TestPrivilegedReplaceMark(t *testing.T) {
	s := open(t)
	spec := state.SetSpec{Name: "T-REMARK", Type: state.HashIPPort, Family: state.IPv4, Marks: true}
	if err := s.Create(spec); err != nil {
		t.Fatal(err)
	}
	defer s.Destroy(spec.Name)
	one := state.SetEntry{Addr: vip, Proto: state.TCP, Port: 80, Mark: 1, MarkMask: 0x3fff}
	two := one
	two.Mark = 2
	noErrors(t, "add", s.Exec([]kernel.SetOp{{Add: true, Set: spec, Entry: one}}))
	if errs := s.Exec([]kernel.SetOp{{Add: true, Set: spec, Entry: two}}); !errors.Is(errs[0], ErrExist) {
		t.Errorf("add with another mark: %v, want ErrExist", errs[0])
	}
	noErrors(t, "replace", s.Exec([]kernel.SetOp{{Add: true, Replace: true, Set: spec, Entry: two}}))
	sets, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if got := sets[spec.Name]; len(got.Entries) != 1 || !got.Marks {
		t.Fatalf("listed %+v, want the one member with mark 2", got)
	} else if _, ok := got.Entries[two]; !ok {
		t.Errorf("listed %v, want %s", got.Entries, two.Format(spec.Type))
	}
	if save := ipsetSave(t, spec.Name); len(save) != 2 || save[1] != "add T-REMARK 10.96.0.10,tcp:80 skbmark 0x2/0x3fff" {
		t.Errorf("ipset save: %q", save)
	}
	noErrors(t, "del", s.Exec([]kernel.SetOp{{Set: spec, Entry: one}}))
}

// EncodeAdds packs members as ipset restore does; the kernel reads them all.
func TestPrivilegedEncodeAdds(t *testing.T) {
	s := open(t)
	for _, m := range members {
		t.Run(m.spec.Name, func(t *testing.T) {
			if err := s.Create(m.spec); err != nil {
				t.Fatalf("create: %v", err)
			}
			t.Cleanup(func() { _ = s.Destroy(m.spec.Name) })
			reqs, err := EncodeAdds(m.spec, m.entries, 2)
			if err != nil {
				t.Fatal(err)
			}
			if want := (len(m.entries) + 1) / 2; len(reqs) != want {
				t.Errorf("%d requests for %d members, want %d", len(reqs), len(m.entries), want)
			}
			sock, err := s.socket()
			if err != nil {
				t.Fatal(err)
			}
			noErrors(t, "add", sock.Exec(reqs))
			sets, err := s.List()
			if err != nil {
				t.Fatal(err)
			}
			if got := sets[m.spec.Name]; got == nil || len(got.Entries) != len(m.entries) {
				t.Fatalf("listed %+v, want %d members", got, len(m.entries))
			}
		})
	}
}
