package apply

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fault"
	"github.com/ipvs-proxy/ipvs-proxy/internal/plan"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// TestRecordMatchesTheKernel is the believed-state invariant that lets a
// partial sync read nothing: after a plan is applied, the state observed
// before it with plan.Record of every operation that took effect equals
// what the kernel holds. Random desired states over a kernel holding
// another random state, with a share of the writes failing.
func TestRecordMatchesTheKernel(t *testing.T) {
	for seed := range int64(300) {
		rnd := rand.New(rand.NewSource(seed))
		fk := fake.New(netip.MustParseAddr("10.0.0.1"))
		inj := fault.NewInjector(0, seed)
		k := fault.Wrap(fk.Interfaces(), inj)
		old := randomState(rnd)
		observed, err := Observe(k, old, false)
		if err != nil {
			t.Fatal(err)
		}
		New(k).Apply(plan.Diff(old, observed, plan.Options{ConnsKnown: true}))

		want := randomState(rnd)
		inj.SetRate(rnd.Float64() / 2)
		believed, err := Observe(k, want, false)
		if err != nil {
			t.Fatal(err)
		}
		pl := plan.Diff(want, believed, plan.Options{ConnsKnown: true})
		res := New(k).Apply(pl)
		for i, op := range pl.Ops {
			if res.Done[i] {
				plan.Record(believed, op, want.Rules)
			}
		}
		after, err := Observe(fk.Interfaces(), want, false)
		if err != nil {
			t.Fatal(err)
		}
		if b, a := render(believed), render(after); b != a {
			t.Fatalf("seed %d: believed state after %d operations (%d failed):\n%s\nthe kernel holds:\n%s", seed, len(pl.Ops), res.Failed(), b, a)
		}
	}
}

// randomState is a desired state over a few addresses, virtual servers,
// real servers, set members, sysctls and timeouts.
func randomState(rnd *rand.Rand) *state.State {
	s := state.New()
	s.Link = true
	set := state.NewSet(state.SetSpec{Name: "KUBE-CLUSTER-IP", Type: state.HashIPPort, Family: state.IPv4})
	s.Sets[set.Name] = set
	for i := range 6 {
		if rnd.Intn(3) == 0 {
			continue
		}
		vip := netip.AddrFrom4([4]byte{10, 96, 0, byte(i + 1)})
		s.Addresses[vip] = struct{}{}
		for _, proto := range []state.Protocol{state.TCP, state.UDP} {
			if rnd.Intn(2) == 0 {
				continue
			}
			key := state.VSKey{Proto: proto, Addr: vip, Port: 80}
			vs := &state.Service{VirtualServer: state.VirtualServer{Key: key, Scheduler: []string{"rr", "wrr", "lc"}[rnd.Intn(3)]},
				RealServers: map[state.RSKey]state.RealServer{}}
			for r := range 4 {
				if rnd.Intn(2) == 0 {
					rk := state.RSKey{Addr: netip.AddrFrom4([4]byte{10, 244, 0, byte(r + 1)}), Port: 8080}
					vs.RealServers[rk] = state.RealServer{Key: rk, Weight: int32(rnd.Intn(3))}
				}
			}
			s.Services[key] = vs
			set.Entries[state.SetEntry{Addr: vip, Proto: proto, Port: 80}] = struct{}{}
		}
	}
	s.Sysctls["net/ipv4/vs/conntrack"] = fmt.Sprint(rnd.Intn(2))
	s.Timeouts = state.Timeouts{TCP: time.Duration(rnd.Int63n(3)) * time.Minute}
	return s
}

// render writes what a state holds in ipvsadm -Sn, ipset save and address
// list form, with the link, sysctls and timeouts.
func render(s *state.State) string {
	var b bytes.Buffer
	_ = s.WriteIPVS(&b)
	_ = s.WriteSetMembers(&b)
	_ = s.WriteAddresses(&b)
	fmt.Fprintf(&b, "link %v timeouts %+v\n", s.Link, s.Timeouts)
	for _, k := range slices.Sorted(maps.Keys(s.Sysctls)) {
		fmt.Fprintf(&b, "%s=%s\n", k, s.Sysctls[k])
	}
	return b.String()
}
