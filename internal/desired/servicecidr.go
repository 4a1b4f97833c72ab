package desired

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	networking "k8s.io/api/networking/v1"
)

// ServiceCIDRs returns the CIDRs of ServiceCIDR objects (networking.k8s.io/v1),
// sorted and without duplicates, and an error naming the object and field of
// each one that is not a CIDR. They are the ranges ClusterIPs come from:
// traffic to an address inside them that no Service has is dropped (see
// internal/rules/fixes.go), as kube-proxy's nftables mode does.
func ServiceCIDRs(objs []*networking.ServiceCIDR) ([]netip.Prefix, []error) {
	var out []netip.Prefix
	var errs []error
	for _, o := range objs {
		for i, c := range o.Spec.CIDRs {
			p, err := netip.ParsePrefix(strings.TrimSpace(c))
			if err != nil {
				errs = append(errs, &ObjectError{Kind: "ServiceCIDR", Name: o.Name, Field: fmt.Sprintf("spec.cidrs[%d]", i),
					Msg: fmt.Sprintf("%q is not a CIDR", c)})
				continue
			}
			out = append(out, p.Masked())
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out), errs
}
