package desired

import (
	"net/netip"
	"slices"
)

// outermost drops the ranges that another range of the list contains (and
// duplicates): they admit no one more. An nft interval set refuses a prefix
// inside another one of the same address and port, and an ipset gains
// nothing from it.
func outermost(ranges []netip.Prefix) []netip.Prefix {
	sorted := slices.Clone(ranges)
	// shortest prefixes first, so that each range is checked against every wider one
	slices.SortStableFunc(sorted, func(a, b netip.Prefix) int { return a.Bits() - b.Bits() })
	var out []netip.Prefix
	for _, r := range sorted {
		if !slices.ContainsFunc(out, func(o netip.Prefix) bool { return o.Bits() <= r.Bits() && o.Contains(r.Addr()) }) {
			out = append(out, r)
		}
	}
	return out
}
