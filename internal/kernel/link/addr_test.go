package link

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch"
	"golang.org/x/sys/unix"
)

func TestEncodeAddr(t *testing.T) {
	for _, tc := range []struct {
		op         kernel.AddrOp
		typ, flags uint16
		hdr        []byte
	}{
		{kernel.AddrOp{Add: true, Addr: netip.MustParseAddr("10.96.0.10")}, unix.RTM_NEWADDR,
			unix.NLM_F_REQUEST | unix.NLM_F_CREATE | unix.NLM_F_EXCL, []byte{unix.AF_INET, 32, 0, 0, 7, 0, 0, 0}},
		{kernel.AddrOp{Addr: netip.MustParseAddr("::ffff:10.96.0.10")}, unix.RTM_DELADDR,
			unix.NLM_F_REQUEST, []byte{unix.AF_INET, 32, 0, 0, 7, 0, 0, 0}},
		{kernel.AddrOp{Add: true, Addr: netip.MustParseAddr("fd00::a")}, unix.RTM_NEWADDR,
			unix.NLM_F_REQUEST | unix.NLM_F_CREATE | unix.NLM_F_EXCL, []byte{unix.AF_INET6, 128, unix.IFA_F_NODAD, 0, 7, 0, 0, 0}},
	} {
		req, err := encodeAddr(tc.op, 7)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := nlbatch.ParseMessages(req)
		if err != nil {
			t.Fatal(err)
		}
		m := msgs[0]
		if m.Header.Type != tc.typ || m.Header.Flags != tc.flags {
			t.Errorf("%v: header %+v", tc.op, m.Header)
		}
		if string(m.Data[:8]) != string(tc.hdr) {
			t.Errorf("%v: ifaddrmsg %v, want %v", tc.op, m.Data[:8], tc.hdr)
		}
		attrs, err := nlbatch.ParseAttrs(m.Data[8:])
		if err != nil || len(attrs) != 2 {
			t.Fatalf("attrs %v, %v", attrs, err)
		}
		want := tc.op.Addr.Unmap().AsSlice()
		for _, a := range attrs {
			if (a.Type != unix.IFA_LOCAL && a.Type != unix.IFA_ADDRESS) || string(a.Value) != string(want) {
				t.Errorf("%v: attribute %d = %v", tc.op, a.Type, a.Value)
			}
		}
	}
	if _, err := encodeAddr(kernel.AddrOp{}, 1); !errors.Is(err, errEncode) {
		t.Errorf("no address: %v", err)
	}
}

func TestUsedBeforeOpen(t *testing.T) {
	l := New(Config{})
	if l.name != DefaultName {
		t.Errorf("name = %q", l.name)
	}
	if err := l.EnsureLink(); !errors.Is(err, errNotOpen) {
		t.Errorf("EnsureLink: %v", err)
	}
	if errs := l.Exec([]kernel.AddrOp{{}}); !errors.Is(errs[0], errNotOpen) {
		t.Errorf("Exec: %v", errs[0])
	}
}
