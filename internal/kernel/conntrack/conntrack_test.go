package conntrack

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// flow is a client's connection to vip:port, answered by rs.
func flow(proto uint8, vip string, port uint16, rs string) *netlink.ConntrackFlow {
	return &netlink.ConntrackFlow{
		Forward: netlink.IPTuple{Protocol: proto, SrcIP: net.ParseIP("192.0.2.1"), DstIP: net.ParseIP(vip), SrcPort: 40000, DstPort: port},
		Reverse: netlink.IPTuple{Protocol: proto, SrcIP: net.ParseIP(rs), DstIP: net.ParseIP("192.0.2.1"), SrcPort: 53, DstPort: 40000},
	}
}

func TestFilterMatches(t *testing.T) {
	vip := netip.MustParseAddr("10.96.0.10")
	rs := netip.MustParseAddr("10.244.1.7")
	for _, tc := range []struct {
		filter kernel.ConntrackFilter
		flow   *netlink.ConntrackFlow
		match  bool
	}{
		{kernel.ConntrackFilter{Proto: state.UDP, VIP: vip, Port: 53}, flow(17, "10.96.0.10", 53, "10.244.1.7"), true},
		{kernel.ConntrackFilter{Proto: state.UDP, VIP: vip, Port: 53}, flow(6, "10.96.0.10", 53, "10.244.1.7"), false},
		{kernel.ConntrackFilter{Proto: state.UDP, VIP: vip, Port: 53}, flow(17, "10.96.0.11", 53, "10.244.1.7"), false},
		{kernel.ConntrackFilter{Proto: state.UDP, VIP: vip, Port: 53}, flow(17, "10.96.0.10", 54, "10.244.1.7"), false},
		{kernel.ConntrackFilter{Proto: state.UDP, VIP: vip, Port: 53, RS: rs}, flow(17, "10.96.0.10", 53, "10.244.1.7"), true},
		{kernel.ConntrackFilter{Proto: state.UDP, VIP: vip, Port: 53, RS: rs}, flow(17, "10.96.0.10", 53, "10.244.1.8"), false},
		{kernel.ConntrackFilter{Proto: state.UDP, VIP: vip}, flow(17, "10.96.0.10", 9, "10.244.1.8"), true},
	} {
		nf, family, err := toNetlink(tc.filter)
		if err != nil || family != unix.AF_INET {
			t.Fatalf("toNetlink(%+v) = %v, %v", tc.filter, family, err)
		}
		if got := nf.MatchConntrackFlow(tc.flow); got != tc.match {
			t.Errorf("%+v matches %s: %v, want %v", tc.filter, tc.flow, got, tc.match)
		}
	}
}

func TestFilterRejects(t *testing.T) {
	for _, f := range []kernel.ConntrackFilter{{Proto: state.TCP}, {VIP: netip.MustParseAddr("10.0.0.1")}} {
		if _, _, err := toNetlink(f); err == nil {
			t.Errorf("toNetlink(%+v) succeeded", f)
		}
	}
	if _, family, _ := toNetlink(kernel.ConntrackFilter{Proto: state.TCP, VIP: netip.MustParseAddr("fd00::a")}); family != unix.AF_INET6 {
		t.Errorf("IPv6 filter family %d", family)
	}
}

func TestUsedBeforeOpen(t *testing.T) {
	if err := New(Config{}).Flush(nil); !errors.Is(err, errNotOpen) {
		t.Errorf("Flush = %v", err)
	}
}
