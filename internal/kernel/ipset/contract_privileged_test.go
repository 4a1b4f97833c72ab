//go:build linux && privileged

package ipset

import (
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/contract"
)

// TestPrivilegedContract runs the ipset contract against the kernel, the
// one the fake keeps in the unit tests.
func TestPrivilegedContract(t *testing.T) {
	contract.IPSet(t, func(t *testing.T) kernel.IPSet { return open(t) })
}
