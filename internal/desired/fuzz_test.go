package desired

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/manifest"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// FuzzBuild: no Service or EndpointSlice makes compute panic, and the
// desired state it builds is one the kernel would accept.
func FuzzBuild(f *testing.F) {
	for _, dir := range []string{"../cli/testdata/plan/*.yaml", "../cli/testdata/bad/s*.yaml", "../cli/testdata/bad/e*.yaml"} {
		seeds, _ := filepath.Glob(dir)
		for _, s := range seeds {
			if b, err := os.ReadFile(s); err == nil {
				f.Add(b)
			}
		}
	}
	in := NewInput(config.Default(), Node{Name: "node1", Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")}})
	f.Fuzz(func(t *testing.T, data []byte) {
		objs := manifest.Read("fuzz", data)
		x, _ := Build(in, objs.Services, objs.EndpointSlices)
		s := x.State()
		for k, svc := range s.Services {
			// an address and port, or a firewall mark within the marks' field
			keyed := k.Port != 0 || (k.FWMark != 0 && k.FWMark&^rules.InClusterMarkMask(in.Config.MasqueradeBit) == 0 && k.Addr.IsUnspecified())
			if !keyed || !k.Addr.IsValid() || !state.ValidScheduler(svc.Scheduler) || svc.Key != k {
				t.Fatalf("invalid virtual server %s: %+v", k, svc.VirtualServer)
			}
			for rk, rs := range svc.RealServers {
				if rk.Port == 0 || !rk.Addr.IsValid() || rs.Key != rk || state.FamilyOf(rk.Addr) != state.FamilyOf(k.Addr) {
					t.Fatalf("invalid real server %s of %s", rk, k)
				}
			}
		}
		// every in-cluster virtual server is reached through a mark set
		// member, and every member's mark leads to one
		for _, f := range []state.Family{state.IPv4, state.IPv6} {
			marks := map[uint32]bool{}
			keys := map[state.SetEntry]bool{}
			for e := range s.Sets[SetName(SetExternalLocalMarks, f)].Entries {
				if keys[e.Key()] {
					t.Fatalf("two members %s with different marks: the kernel holds one", e.Key().Format(state.HashIPPort))
				}
				keys[e.Key()] = true
				if _, ok := s.Services[state.FWMarkKey(e.Mark, f)]; !ok {
					t.Fatalf("member %s carries mark %#x of no virtual server", e.Format(state.HashIPPort), e.Mark)
				}
				marks[e.Mark] = true
			}
			for k := range s.Services {
				if k.FWMark != 0 && state.FamilyOf(k.Addr) == f && !marks[k.FWMark] {
					t.Fatalf("virtual server %s is reached by no member", k)
				}
			}
		}
		for name, set := range s.Sets {
			if len(name) > 31 {
				t.Fatalf("set name %q longer than ipset allows", name)
			}
			for e := range set.Entries {
				if set.Type != state.BitmapPort && set.Type != state.HashNet && !e.Addr.IsValid() {
					t.Fatalf("member of %s without an address", name)
				}
				if set.Marks != (e.Mark != 0) {
					t.Fatalf("member %s of %s: mark %#x in a set with marks %v", e.Format(set.Type), name, e.Mark, set.Marks)
				}
			}
		}
	})
}
