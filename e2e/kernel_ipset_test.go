package e2e

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// TestKernelIPSet creates every set ipvs-proxy uses, in both families, with
// the revisions it asks for, on Debian's kernel, and checks that the ipset
// tool reads them.
func TestKernelIPSet(t *testing.T) {
	framework.ResetKernel(t)
	s := ipset.New(ipset.Config{})
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		for _, spec := range desired.SetSpecs(f) {
			if err := s.Create(spec); err != nil {
				t.Errorf("create %s %s: %v", spec.Name, spec.Type, err)
			}
		}
	}
	header := framework.Run(t, framework.IPSetBin, "list", "-t")
	for _, want := range []string{"Type: hash:ip\n", "Type: hash:ip,port,net", "Type: bitmap:port"} {
		if !strings.Contains(header, want) {
			t.Errorf("ipset list -t lacks %q", want)
		}
	}
	t.Log(firstLines(framework.Run(t, framework.IPSetBin, "list", "-t", "KUBE-LOAD-BALANCER-SOURCE-CIDR"), 10))

	vip := netip.MustParseAddr("10.96.0.10")
	spec := state.SetSpec{Name: desired.SetClusterIP, Type: state.HashIPPort, Family: state.IPv4}
	errs := s.Exec([]kernel.SetOp{
		{Add: true, Set: spec, Entry: state.SetEntry{Addr: vip, Proto: state.TCP, Port: 80}},
		{Add: true, Set: spec, Entry: state.SetEntry{Addr: vip, Proto: state.UDP, Port: 53}},
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(framework.IPSetMembers(t, spec.Name), " "); got != "10.96.0.10,tcp:80 10.96.0.10,udp:53" {
		t.Errorf("members = %q", got)
	}
	sets, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 2*len(desired.SetSpecs(state.IPv4)) || len(sets[spec.Name].Entries) != 2 {
		t.Errorf("List: %d sets, %d members of %s", len(sets), len(sets[spec.Name].Entries), spec.Name)
	}
}
