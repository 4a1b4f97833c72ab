package desired

import (
	"net/netip"
	"slices"
	"testing"

	networking "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// TestServiceCIDRMembers: the CIDRs of ServiceCIDR objects become members of
// KUBE-SERVICE-CIDRS of their family; an invalid one is an error naming the
// object and field, and the others are kept.
func TestServiceCIDRMembers(t *testing.T) {
	objs := []*networking.ServiceCIDR{
		{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes"}, Spec: networking.ServiceCIDRSpec{CIDRs: []string{"10.96.0.0/16", "fd00:96::/112"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: networking.ServiceCIDRSpec{CIDRs: []string{"10.97.0.0/33", "10.96.0.0/16"}}},
	}
	cidrs, errs := ServiceCIDRs(objs)
	if want := []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16"), netip.MustParsePrefix("fd00:96::/112")}; !slices.Equal(cidrs, want) {
		t.Errorf("CIDRs %v, want %v", cidrs, want)
	}
	if len(errs) != 1 || errs[0].Error() != `ServiceCIDR bad: spec.cidrs[0]: "10.97.0.0/33" is not a CIDR` {
		t.Errorf("errors %v", errs)
	}
	base := Base(NewInput(config.Default(), Node{Name: "n", Addresses: addrs("10.0.0.1", "fd00::1"), ServiceCIDRs: cidrs}))
	for name, want := range map[string]string{"KUBE-SERVICE-CIDRS": "10.96.0.0/16", "KUBE-6-SERVICE-CIDRS": "fd00:96::/112"} {
		if got := base.Sets[name].SortedEntries(); len(got) != 1 || got[0] != (state.SetEntry{Net: netip.MustParsePrefix(want)}) {
			t.Errorf("%s members %v, want %s", name, got, want)
		}
	}
}
