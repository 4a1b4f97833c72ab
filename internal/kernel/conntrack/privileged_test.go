//go:build linux && privileged

package conntrack

import (
	"net"
	"net/netip"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch/nstest"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { nstest.Main(m) }

// clientPort makes every entry's tuples unique: the table is keyed by both.
var clientPort uint16 = 40000

func create(t *testing.T, family netlink.InetFamily, proto uint8, vip string, port uint16, rs string) {
	t.Helper()
	clientPort++
	client := "192.0.2.1"
	if family == unix.AF_INET6 {
		client = "2001:db8::1"
	}
	ip := func(s string) net.IP {
		// ConntrackCreate sends the slice as is: IPv4 must be 4 bytes.
		a := net.ParseIP(s)
		if v4 := a.To4(); v4 != nil {
			return v4
		}
		return a
	}
	f := &netlink.ConntrackFlow{
		FamilyType: uint8(family),
		Forward:    netlink.IPTuple{Protocol: proto, SrcIP: ip(client), DstIP: ip(vip), SrcPort: clientPort, DstPort: port},
		Reverse:    netlink.IPTuple{Protocol: proto, SrcIP: ip(rs), DstIP: ip(client), SrcPort: port, DstPort: clientPort},
		TimeOut:    300,
	}
	if proto == unix.IPPROTO_TCP {
		f.ProtoInfo = &netlink.ProtoInfoTCP{State: 3} // established
	}
	if err := netlink.ConntrackCreate(netlink.ConntrackTable, family, f); err != nil {
		t.Fatalf("create conntrack entry %s: %v", f, err)
	}
}

func entries(t *testing.T, family netlink.InetFamily) []*netlink.ConntrackFlow {
	t.Helper()
	flows, err := netlink.ConntrackTableList(netlink.ConntrackTable, family)
	if err != nil {
		t.Fatal(err)
	}
	return flows
}

func TestPrivilegedFlush(t *testing.T) {
	create(t, unix.AF_INET, unix.IPPROTO_UDP, "10.96.0.10", 53, "10.244.1.7")  // deleted: filter 1
	create(t, unix.AF_INET, unix.IPPROTO_UDP, "10.96.0.10", 53, "10.244.1.8")  // kept: another RS
	create(t, unix.AF_INET, unix.IPPROTO_TCP, "10.96.0.10", 53, "10.244.1.7")  // kept: TCP
	create(t, unix.AF_INET, unix.IPPROTO_UDP, "10.96.0.11", 123, "10.244.1.9") // deleted: filter 2
	create(t, unix.AF_INET6, unix.IPPROTO_UDP, "fd00::a", 53, "fd00:1::7")     // deleted: filter 3
	create(t, unix.AF_INET6, unix.IPPROTO_UDP, "fd00::b", 53, "fd00:1::7")     // kept

	c := New(Config{})
	if err := c.Open(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err := c.Flush([]kernel.ConntrackFilter{
		{Proto: state.UDP, VIP: netip.MustParseAddr("10.96.0.10"), Port: 53, RS: netip.MustParseAddr("10.244.1.7")},
		{Proto: state.UDP, VIP: netip.MustParseAddr("10.96.0.11"), Port: 123},
		{Proto: state.UDP, VIP: netip.MustParseAddr("fd00::a"), Port: 53},
	})
	if err != nil {
		t.Fatal(err)
	}
	left := append(entries(t, unix.AF_INET), entries(t, unix.AF_INET6)...)
	var got []string
	for _, f := range left {
		got = append(got, f.Forward.DstIP.String()+" "+f.Reverse.SrcIP.String())
	}
	want := map[string]bool{"10.96.0.10 10.244.1.8": true, "10.96.0.10 10.244.1.7": true, "fd00::b fd00:1::7": true}
	if len(got) != len(want) {
		t.Errorf("left %v, want %v", got, want)
	}
	for _, g := range got {
		if !want[g] {
			t.Errorf("entry %s should have been deleted", g)
		}
	}
	for _, f := range left {
		if f.Forward.DstIP.String() == "10.96.0.10" && f.Reverse.SrcIP.String() == "10.244.1.7" && f.Forward.Protocol != unix.IPPROTO_TCP {
			t.Errorf("UDP entry to RS 10.244.1.7 kept")
		}
	}
}
