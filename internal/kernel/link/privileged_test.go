//go:build linux && privileged

package link

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch/nstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { nstest.Main(m) }

func open(t *testing.T, name string) *Link {
	t.Helper()
	l := New(Config{Name: name})
	if err := l.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// veth creates a veth pair, both ends up; this host kernel has no dummy.
func veth(t *testing.T, name, peer string) {
	t.Helper()
	err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer})
	if err != nil {
		t.Fatalf("add veth: %v", err)
	}
	for _, n := range []string{name, peer} {
		l, err := netlink.LinkByName(n)
		if err == nil {
			err = netlink.LinkSetUp(l)
		}
		if err != nil {
			t.Fatalf("set %s up: %v", n, err)
		}
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(name); err == nil {
			netlink.LinkDel(l)
		}
	})
}

func addAddr(t *testing.T, dev, cidr string) {
	t.Helper()
	l, err := netlink.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(l, a); err != nil {
		t.Fatalf("add %s to %s: %v", cidr, dev, err)
	}
}

func TestPrivilegedAddresses(t *testing.T) {
	veth(t, "kipvs-test", "kipvs-peer")
	l := open(t, "kipvs-test")

	var adds []kernel.AddrOp
	var want []netip.Addr
	for i := range 300 {
		a := netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
		b := netip.AddrFrom16([16]byte{0xfd, 0, 15: byte(i), 14: byte(i >> 8)})
		adds = append(adds, kernel.AddrOp{Add: true, Addr: a}, kernel.AddrOp{Add: true, Addr: b})
		want = append(want, a, b)
	}
	for i, err := range l.Exec(adds) {
		if err != nil {
			t.Fatalf("add %s: %v", adds[i].Addr, err)
		}
	}
	exists, got, err := l.Addresses()
	if err != nil || !exists {
		t.Fatalf("Addresses = %v, %v", exists, err)
	}
	// The up veth also has its IPv6 link-local address.
	got = slices.DeleteFunc(got, netip.Addr.IsLinkLocalUnicast)
	slices.SortFunc(want, netip.Addr.Compare)
	if !slices.Equal(got, want) {
		t.Errorf("Addresses: %d, want %d", len(got), len(want))
	}

	// Host prefixes, IPv6 not tentative.
	link, _ := netlink.LinkByName("kipvs-test")
	list, _ := netlink.AddrList(link, netlink.FAMILY_ALL)
	for _, a := range list {
		ones, bits := a.Mask.Size()
		if a.IP.IsLinkLocalUnicast() {
			continue
		}
		if ones != bits {
			t.Errorf("%s bound as /%d", a.IP, ones)
		}
		if a.Flags&unix.IFA_F_TENTATIVE != 0 {
			t.Errorf("%s is tentative", a.IP)
		}
	}

	errs := l.Exec([]kernel.AddrOp{
		{Add: true, Addr: want[0]},                                  // present
		{Addr: netip.MustParseAddr("10.99.0.1")},                    // absent
		{Addr: want[1]},                                             // present: removed
		{Add: true, Addr: netip.MustParseAddr("fd00::ffff:ffff:1")}, // new
	})
	if !errors.Is(errs[0], unix.EEXIST) || !errors.Is(errs[1], unix.EADDRNOTAVAIL) || errs[2] != nil || errs[3] != nil {
		t.Errorf("errs = %v, want [EEXIST EADDRNOTAVAIL nil nil]", errs)
	}

	var dels []kernel.AddrOp
	for _, a := range want[2:] {
		dels = append(dels, kernel.AddrOp{Addr: a})
	}
	for i, err := range l.Exec(dels) {
		if err != nil {
			t.Fatalf("del %s: %v", dels[i].Addr, err)
		}
	}
	_, got, _ = l.Addresses()
	got = slices.DeleteFunc(got, netip.Addr.IsLinkLocalUnicast)
	if len(got) != 2 || got[0] != want[0] || got[1] != netip.MustParseAddr("fd00::ffff:ffff:1") {
		t.Errorf("left: %v, want [%s fd00::ffff:ffff:1]", got, want[0])
	}
}

func TestPrivilegedMissingLink(t *testing.T) {
	l := open(t, "kipvs-none")
	exists, addrs, err := l.Addresses()
	if exists || addrs != nil || err != nil {
		t.Errorf("Addresses of a missing link = %v, %v, %v", exists, addrs, err)
	}
	errs := l.Exec([]kernel.AddrOp{{Add: true, Addr: netip.MustParseAddr("10.0.0.1")}})
	if !errors.Is(errs[0], unix.ENODEV) {
		t.Errorf("Exec on a missing link: %v, want ENODEV", errs[0])
	}
	if err := l.DeleteLink(); err != nil {
		t.Errorf("DeleteLink of a missing link: %v", err)
	}
}

func TestPrivilegedEnsureLink(t *testing.T) {
	veth(t, "kipvs-veth", "kipvs-vpeer")
	if err := open(t, "kipvs-veth").EnsureLink(); err == nil || !strings.Contains(err.Error(), "type veth, not dummy") {
		t.Errorf("EnsureLink over a veth: %v", err)
	}
	if err := open(t, "kipvs-veth").DeleteLink(); err == nil {
		t.Error("DeleteLink removed a veth")
	}

	l := open(t, "kipvs-dummy")
	err := l.EnsureLink()
	if _, statErr := os.Stat("/sys/module/dummy"); statErr != nil && errors.Is(err, unix.EOPNOTSUPP) {
		// This host kernel: no dummy links. The error says what to do.
		if !strings.Contains(err.Error(), "modprobe dummy") {
			t.Errorf("EnsureLink without dummy support: %v", err)
		}
		t.Logf("no dummy link type here: %v", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := l.EnsureLink(); err != nil {
		t.Errorf("EnsureLink again: %v", err)
	}
	link, err := netlink.LinkByName("kipvs-dummy")
	if err != nil || link.Attrs().Flags&net.FlagUp != 0 {
		t.Errorf("link %v (%v): want it down", link, err)
	}
	if err := l.DeleteLink(); err != nil {
		t.Error(err)
	}
}

func TestPrivilegedNodeAddresses(t *testing.T) {
	lo, _ := netlink.LinkByName("lo")
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	veth(t, "kipvs-own", "node0")
	addAddr(t, "node0", "192.0.2.10/24")
	addAddr(t, "node0", "2001:db8::10/64")
	addAddr(t, "kipvs-own", "10.96.0.10/32")
	l := open(t, "kipvs-own")

	var got []netip.Addr
	// IPv6 addresses appear once DAD is done: wait for them.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var err error
		if got, err = l.NodeAddresses(); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(got, netip.MustParseAddr("2001:db8::10")) {
			break
		}
	}
	want := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")}
	if !slices.Equal(got, want) {
		t.Errorf("NodeAddresses = %v, want %v", got, want)
	}
}
