package contract

import (
	"net/netip"
	"syscall"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
)

// Link runs the link contract. open returns the implementation with no
// kube-ipvs0, once per case; the cases delete it.
func Link(t *testing.T, open func(t *testing.T) kernel.Link) {
	a := netip.MustParseAddr("10.96.0.1")
	t.Run("no link", func(t *testing.T) {
		l := open(t)
		if exists, _, err := l.Addresses(); exists || err != nil {
			t.Fatalf("Addresses before EnsureLink: exists %v, %v", exists, err)
		}
		check(t, "Exec", l.Exec([]kernel.AddrOp{{Add: true, Addr: a}}), []want{is(syscall.ENODEV)})
		check(t, "DeleteLink", []error{l.DeleteLink()}, []want{none})
	})
	t.Run("addresses", func(t *testing.T) {
		l := open(t)
		check(t, "EnsureLink", []error{l.EnsureLink(), l.EnsureLink()}, []want{none, none})
		t.Cleanup(func() { _ = l.DeleteLink() })
		b := netip.MustParseAddr("10.96.0.2")
		errs := l.Exec([]kernel.AddrOp{{Add: true, Addr: a}, {Add: true, Addr: a}, {Addr: b}, {Add: true, Addr: b}, {Addr: b}})
		check(t, "Exec", errs, []want{none, is(syscall.EEXIST), is(syscall.EADDRNOTAVAIL), none, none})
		exists, addrs, err := l.Addresses()
		if !exists || err != nil || len(addrs) != 1 || addrs[0] != a {
			t.Errorf("Addresses: exists %v, %v, %v; want %s", exists, addrs, err, a)
		}
		check(t, "DeleteLink", []error{l.DeleteLink(), l.DeleteLink()}, []want{none, none})
		if exists, _, _ := l.Addresses(); exists {
			t.Error("kube-ipvs0 exists after DeleteLink")
		}
	})
}
