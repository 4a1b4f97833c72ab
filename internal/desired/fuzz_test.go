package desired

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/manifest"
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
			if k.Port == 0 || !k.Addr.IsValid() || !state.ValidScheduler(svc.Scheduler) || svc.Key != k {
				t.Fatalf("invalid virtual server %s: %+v", k, svc.VirtualServer)
			}
			for rk, rs := range svc.RealServers {
				if rk.Port == 0 || !rk.Addr.IsValid() || rs.Key != rk || state.FamilyOf(rk.Addr) != state.FamilyOf(k.Addr) {
					t.Fatalf("invalid real server %s of %s", rk, k)
				}
			}
		}
		for name, set := range s.Sets {
			if len(name) > 31 {
				t.Fatalf("set name %q longer than ipset allows", name)
			}
			for e := range set.Entries {
				if set.Type != state.BitmapPort && !e.Addr.IsValid() {
					t.Fatalf("member of %s without an address", name)
				}
			}
		}
	})
}
