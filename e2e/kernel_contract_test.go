package e2e

import (
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/contract"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/link"
)

// TestKernelContract runs the contracts the fakes keep in the unit tests
// (internal/kernel/contract) against the guest's kernel: IPVS and the dummy
// link exist only here, ipset also in the host's privileged tier.
func TestKernelContract(t *testing.T) {
	t.Run("IPVS", func(t *testing.T) {
		contract.IPVS(t, func(t *testing.T) kernel.IPVS {
			framework.ResetKernel(t)
			return openIPVS(t, ipvs.Config{})
		})
	})
	t.Run("Link", func(t *testing.T) {
		contract.Link(t, func(t *testing.T) kernel.Link {
			framework.ResetKernel(t)
			l := link.New(link.Config{})
			if err := l.Open(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l
		})
	})
	t.Run("IPSet", func(t *testing.T) {
		contract.IPSet(t, func(t *testing.T) kernel.IPSet {
			framework.ResetKernel(t)
			s := ipset.New(ipset.Config{})
			if err := s.Open(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
}
