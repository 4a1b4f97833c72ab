package fake

import (
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/contract"
)

// The fakes keep the contracts the kernel keeps (the same suites run
// against the kernel in the privileged tier and the VM).

func TestIPVSContract(t *testing.T) {
	contract.IPVS(t, func(*testing.T) kernel.IPVS { return NewIPVS() })
}

func TestIPSetContract(t *testing.T) {
	contract.IPSet(t, func(*testing.T) kernel.IPSet { return NewIPSet() })
}

func TestLinkContract(t *testing.T) {
	contract.Link(t, func(*testing.T) kernel.Link { return NewLink() })
}
