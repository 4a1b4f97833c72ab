package e2e

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/link"
	"golang.org/x/sys/unix"
)

// TestKernelLink creates kube-ipvs0 as a dummy link, binds and unbinds
// addresses in batches, and lists the node's addresses without it.
func TestKernelLink(t *testing.T) {
	framework.ResetKernel(t)
	l := link.New(link.Config{})
	if err := l.Open(); err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	if exists, _, err := l.Addresses(); exists || err != nil {
		t.Fatalf("before EnsureLink: exists %v, %v", exists, err)
	}
	if errs := l.Exec([]kernel.AddrOp{{Add: true, Addr: netip.MustParseAddr("10.96.0.1")}}); !errors.Is(errs[0], unix.ENODEV) {
		t.Errorf("Exec without the link: %v, want ENODEV", errs[0])
	}
	for range 2 {
		if err := l.EnsureLink(); err != nil {
			t.Fatal(err)
		}
	}
	show := framework.Run(t, framework.IPBin, "-d", "link", "show", "dev", "kube-ipvs0")
	if !strings.Contains(show, "dummy") || strings.Contains(show, ",UP") {
		t.Errorf("kube-ipvs0 should be a dummy link, down:\n%s", show)
	}

	var ops []kernel.AddrOp
	var want []string
	for i := range 500 {
		a := netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
		b := netip.AddrFrom16([16]byte{0: 0xfd, 14: byte(i >> 8), 15: byte(i)})
		ops = append(ops, kernel.AddrOp{Add: true, Addr: a}, kernel.AddrOp{Add: true, Addr: b})
		want = append(want, a.String()+"/32", b.String()+"/128")
	}
	start := time.Now()
	for i, err := range l.Exec(ops) {
		if err != nil {
			t.Fatalf("add %s: %v", ops[i].Addr, err)
		}
	}
	t.Logf("%d addresses bound in %s", len(ops), time.Since(start).Round(time.Millisecond))
	got := framework.Addrs(t, "kube-ipvs0")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ip addr show kube-ipvs0: %d addresses, want %d", len(got), len(want))
	}
	if out := framework.AddrShow(t, "kube-ipvs0"); strings.Contains(out, "tentative") {
		t.Errorf("IPv6 addresses are tentative:\n%s", firstLines(out, 12))
	}
	exists, addrs, err := l.Addresses()
	if err != nil || !exists || len(addrs) != len(ops) {
		t.Errorf("Addresses = %v, %d addresses, %v", exists, len(addrs), err)
	}

	errs := l.Exec([]kernel.AddrOp{
		{Add: true, Addr: ops[0].Addr},
		{Addr: netip.MustParseAddr("10.99.0.1")},
		{Addr: netip.MustParseAddr("fd00::99:1")},
	})
	if !errors.Is(errs[0], unix.EEXIST) || !errors.Is(errs[1], unix.EADDRNOTAVAIL) || !errors.Is(errs[2], unix.EADDRNOTAVAIL) {
		t.Errorf("errs = %v, want [EEXIST EADDRNOTAVAIL EADDRNOTAVAIL]", errs)
	}

	// The VIPs are local: the kernel accepts connections to them.
	ln, err := net.Listen("tcp", "10.96.0.7:8080")
	if err != nil {
		t.Errorf("listen on a VIP: %v", err)
	} else {
		c, err := net.DialTimeout("tcp", "10.96.0.7:8080", time.Second)
		if err != nil {
			t.Errorf("connect to a VIP on the down dummy link: %v", err)
		} else {
			c.Close()
		}
		ln.Close()
	}

	node, err := l.NodeAddresses()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node addresses: %v", node)
	if !slices.Contains(node, netip.MustParseAddr("127.0.0.1")) || slices.Contains(node, netip.MustParseAddr("::1")) {
		t.Errorf("NodeAddresses = %v: want 127.0.0.1, not ::1", node)
	}
	for _, a := range node {
		if a == ops[0].Addr || a.IsLinkLocalUnicast() {
			t.Errorf("NodeAddresses has %s", a)
		}
	}

	var dels []kernel.AddrOp
	for _, op := range ops {
		dels = append(dels, kernel.AddrOp{Addr: op.Addr})
	}
	for i, err := range l.Exec(dels) {
		if err != nil {
			t.Fatalf("del %s: %v", dels[i].Addr, err)
		}
	}
	if got := framework.Addrs(t, "kube-ipvs0"); len(got) != 0 {
		t.Errorf("left on kube-ipvs0: %v", got)
	}
	if err := l.DeleteLink(); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteLink(); err != nil {
		t.Errorf("DeleteLink again: %v", err)
	}
}
