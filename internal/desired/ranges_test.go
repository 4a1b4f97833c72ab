package desired

import (
	"net/netip"
	"slices"
	"testing"
)

func TestOutermost(t *testing.T) {
	p := netip.MustParsePrefix
	got := outermost([]netip.Prefix{p("10.1.0.0/16"), p("192.168.0.0/24"), p("10.0.0.0/8"), p("10.1.2.3/32"), p("192.168.0.0/24"), p("fd00::/64"), p("fd00::1/128")})
	want := []netip.Prefix{p("10.0.0.0/8"), p("192.168.0.0/24"), p("fd00::/64")}
	if !slices.Equal(got, want) {
		t.Errorf("outermost = %v, want %v", got, want)
	}
}
