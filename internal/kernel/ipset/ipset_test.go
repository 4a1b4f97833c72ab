package ipset

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

var (
	vip    = netip.MustParseAddr("10.96.0.10")
	vip6   = netip.MustParseAddr("fd00::a")
	pod    = netip.MustParseAddr("10.244.1.7")
	pod6   = netip.MustParseAddr("fd00:1::7")
	range4 = netip.MustParsePrefix("192.168.0.0/16")
	range6 = netip.MustParsePrefix("fd00:2::/48")
)

// members has, for each set type and family, members to test with.
var members = []struct {
	spec    state.SetSpec
	entries []state.SetEntry
}{
	{state.SetSpec{Name: "T-IP", Type: state.HashIP, Family: state.IPv4}, []state.SetEntry{{Addr: vip}, {Addr: pod}}},
	{state.SetSpec{Name: "T-IP6", Type: state.HashIP, Family: state.IPv6}, []state.SetEntry{{Addr: vip6}}},
	{state.SetSpec{Name: "T-IPPORT", Type: state.HashIPPort, Family: state.IPv4}, []state.SetEntry{
		{Addr: vip, Proto: state.TCP, Port: 80}, {Addr: vip, Proto: state.UDP, Port: 53}, {Addr: vip, Proto: state.SCTP, Port: 9}}},
	{state.SetSpec{Name: "T-IPPORT6", Type: state.HashIPPort, Family: state.IPv6}, []state.SetEntry{{Addr: vip6, Proto: state.TCP, Port: 443}}},
	{state.SetSpec{Name: "T-IPPORTIP", Type: state.HashIPPortIP, Family: state.IPv4}, []state.SetEntry{{Addr: pod, Proto: state.TCP, Port: 8080, Addr2: pod}}},
	{state.SetSpec{Name: "T-IPPORTIP6", Type: state.HashIPPortIP, Family: state.IPv6}, []state.SetEntry{{Addr: pod6, Proto: state.UDP, Port: 53, Addr2: pod6}}},
	{state.SetSpec{Name: "T-IPPORTNET", Type: state.HashIPPortNet, Family: state.IPv4}, []state.SetEntry{
		{Addr: vip, Proto: state.TCP, Port: 80, Net: range4}, {Addr: vip, Proto: state.TCP, Port: 80, Net: netip.PrefixFrom(pod, 32)}}},
	{state.SetSpec{Name: "T-IPPORTNET6", Type: state.HashIPPortNet, Family: state.IPv6}, []state.SetEntry{{Addr: vip6, Proto: state.TCP, Port: 80, Net: range6}}},
	{state.SetSpec{Name: "T-PORT", Type: state.BitmapPort, Family: state.IPv4}, []state.SetEntry{{Port: 30080}, {Port: 0}, {Port: 65535}}},
	{state.SetSpec{Name: "T-NET", Type: state.HashNet, Family: state.IPv4}, []state.SetEntry{{Net: range4}, {Net: netip.PrefixFrom(vip, 32)}}},
	{state.SetSpec{Name: "T-NET6", Type: state.HashNet, Family: state.IPv6}, []state.SetEntry{{Net: range6}}},
	{state.SetSpec{Name: "T-MARK", Type: state.HashIPPort, Family: state.IPv4, Marks: true}, []state.SetEntry{
		{Addr: vip, Proto: state.TCP, Port: 80, Mark: 0x1, MarkMask: 0x3fff}, {Addr: pod, Proto: state.UDP, Port: 53, Mark: 0x3fff, MarkMask: 0x3fff}}},
	{state.SetSpec{Name: "T-MARK6", Type: state.HashIPPort, Family: state.IPv6, Marks: true}, []state.SetEntry{
		{Addr: vip6, Proto: state.SCTP, Port: 9, Mark: 0x20000, MarkMask: 0x3fff0000}}},
}

// requestAttrs returns the attributes of an encoded request.
func requestAttrs(t *testing.T, req []byte) []nlbatch.Attr {
	t.Helper()
	msgs, err := nlbatch.ParseMessages(req)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("ParseMessages = %v, %v", msgs, err)
	}
	attrs, err := nlbatch.ParseAttrs(msgs[0].Data[nfgenmsgLen:])
	if err != nil {
		t.Fatal(err)
	}
	return attrs
}

func TestEntryRoundTrip(t *testing.T) {
	for _, m := range members {
		for _, e := range m.entries {
			req, err := encodeEntry(true, false, m.spec, e)
			if err != nil {
				t.Fatalf("%s %v: %v", m.spec.Name, e, err)
			}
			var data *nlbatch.Attr
			for _, a := range requestAttrs(t, req) {
				if a.Type == nl.IPSET_ATTR_DATA {
					if !a.Nested {
						t.Errorf("%s: DATA without NLA_F_NESTED", m.spec.Name)
					}
					data = &a
				}
			}
			if data == nil {
				t.Fatalf("%s: no DATA attribute", m.spec.Name)
			}
			got, ok, err := parseEntry(m.spec.Type, data.Value)
			if err != nil || !ok || got != e {
				t.Errorf("%s: round trip of %s: got %+v (%v, %v)", m.spec.Name, e.Format(m.spec.Type), got, ok, err)
			}
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	hashIPPortNet := state.SetSpec{Name: "S", Type: state.HashIPPortNet, Family: state.IPv4}
	cases := map[string]func() ([]byte, error){
		"member without address": func() ([]byte, error) {
			return encodeEntry(true, false, state.SetSpec{Name: "S", Type: state.HashIP}, state.SetEntry{})
		},
		"net member without net": func() ([]byte, error) {
			return encodeEntry(true, false, hashIPPortNet, state.SetEntry{Addr: vip, Proto: state.TCP, Port: 1})
		},
		"unknown type": func() ([]byte, error) {
			return encodeEntry(true, false, state.SetSpec{Name: "S", Type: "hash:mac"}, state.SetEntry{})
		},
		"long name": func() ([]byte, error) { return encodeDestroy("KUBE-0123456789012345678901234567") },
		"no family": func() ([]byte, error) { return encodeCreate(state.SetSpec{Name: "S", Type: state.HashIP}) },
		"create hash:n": func() ([]byte, error) {
			return encodeCreate(state.SetSpec{Name: "S", Type: "hash:net,iface", Family: state.IPv4})
		},
	}
	for name, f := range cases {
		if _, err := f(); !errors.Is(err, errEncode) {
			t.Errorf("%s: %v, want errEncode", name, err)
		}
	}
}

func TestCreateAttributes(t *testing.T) {
	req, err := encodeCreate(state.SetSpec{Name: "KUBE-CLUSTER-IP", Type: state.HashIPPort, Family: state.IPv6})
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint16]string{}
	for _, a := range requestAttrs(t, req) {
		got[a.Type] = string(a.Value)
	}
	want := map[uint16]string{
		nl.IPSET_ATTR_PROTOCOL: "\x06",
		nl.IPSET_ATTR_SETNAME:  "KUBE-CLUSTER-IP\x00",
		nl.IPSET_ATTR_TYPENAME: "hash:ip,port\x00",
		nl.IPSET_ATTR_REVISION: "\x05",
		nl.IPSET_ATTR_FAMILY:   "\x0a",
	}
	for typ, v := range want {
		if got[typ] != v {
			t.Errorf("attribute %d = %q, want %q", typ, got[typ], v)
		}
	}
}

// dumpMessage builds one message of a list dump, as the kernel does.
func dumpMessage(name, typ string, family uint8, entries ...[]byte) []byte {
	m := nlbatch.NewMessage(unix.NFNL_SUBSYS_IPSET<<8|nl.IPSET_CMD_LIST, unix.NLM_F_MULTI).
		Header([]byte{unix.AF_INET, 0, 0, 0}).
		U8(nl.IPSET_ATTR_PROTOCOL, 6).
		String(nl.IPSET_ATTR_SETNAME, name)
	if typ != "" {
		m.String(nl.IPSET_ATTR_TYPENAME, typ).U8(nl.IPSET_ATTR_FAMILY, family).U8(nl.IPSET_ATTR_REVISION, 5).
			Begin(nl.IPSET_ATTR_DATA|nested).BE32(nl.IPSET_ATTR_HASHSIZE|netOrder, 1024).End()
	}
	m.Begin(nl.IPSET_ATTR_ADT | nested)
	for _, e := range entries {
		m.Attr(nl.IPSET_ATTR_DATA|nested, e)
	}
	return m.End().Bytes()
}

// entryData encodes a member the way it appears in a dump.
func entryData(t *testing.T, spec state.SetSpec, e state.SetEntry) []byte {
	req, err := encodeEntry(true, false, spec, e)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range requestAttrs(t, req) {
		if a.Type == nl.IPSET_ATTR_DATA {
			return a.Value
		}
	}
	t.Fatal("no DATA")
	return nil
}

func TestListMergesContinuationMessages(t *testing.T) {
	spec := state.SetSpec{Name: "KUBE-CLUSTER-IP", Type: state.HashIPPort, Family: state.IPv4}
	a := state.SetEntry{Addr: vip, Proto: state.TCP, Port: 80}
	b := state.SetEntry{Addr: vip, Proto: state.UDP, Port: 53}
	l := lister{sets: map[string]*state.Set{}}
	for _, msg := range [][]byte{
		dumpMessage(spec.Name, string(spec.Type), unix.NFPROTO_IPV4, entryData(t, spec, a)),
		dumpMessage(spec.Name, "", 0, entryData(t, spec, b)), // continuation: name and members only
		dumpMessage("OTHER", "hash:net,iface", unix.NFPROTO_IPV6, []byte{}),
	} {
		msgs, err := nlbatch.ParseMessages(msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.add(msgs[0].Data); err != nil {
			t.Fatal(err)
		}
	}
	set := l.sets[spec.Name]
	if set == nil || set.SetSpec != spec || len(set.Entries) != 2 {
		t.Fatalf("set = %+v", set)
	}
	if _, ok := set.Entries[b]; !ok {
		t.Errorf("member of the continuation message missing: %v", set.Entries)
	}
	if o := l.sets["OTHER"]; o == nil || o.Type != "hash:net,iface" || o.Family != state.IPv6 || len(o.Entries) != 0 {
		t.Errorf("foreign set = %+v", o)
	}
}

func TestListRejectsMembersBeforeHeader(t *testing.T) {
	l := lister{sets: map[string]*state.Set{}}
	msgs, _ := nlbatch.ParseMessages(dumpMessage("S", "", 0))
	if err := l.add(msgs[0].Data); !errors.Is(err, nlbatch.ErrMalformed) {
		t.Errorf("add = %v, want ErrMalformed", err)
	}
}

func TestKernelErrors(t *testing.T) {
	err := kernelError(syscall.Errno(nl.IPSET_ERR_EXIST))
	if !errors.Is(err, ErrExist) || !errors.Is(err, syscall.Errno(4103)) {
		t.Errorf("kernelError(4103) = %#v", err)
	}
	if err := kernelError(syscall.Errno(nl.IPSET_ERR_BUSY)); !errors.Is(err, unix.EBUSY) || !errors.Is(err, ErrBusy) {
		t.Errorf("IPSET_ERR_BUSY = %v: want it to match EBUSY", err)
	}
	if err := kernelError(unix.ENOENT); !errors.Is(err, unix.ENOENT) {
		t.Errorf("ENOENT = %#v, want it unchanged", err)
	}
	ext := kernelError(&nlbatch.Error{Errno: 4110, Msg: "x"})
	if !errors.Is(ext, ErrIPAddrIPv6) {
		t.Errorf("with a message: %v", ext)
	}
	// The apply layer tests with the kernel package's errnos.
	if !kernel.AlreadyExists(ErrExist) || !kernel.AlreadyGone(ErrExist) || !errors.Is(ErrBusy, kernel.ErrIPSetBusy) {
		t.Error("ipset errors are not recognized by package kernel's helpers")
	}
	if s := fmt.Sprint(ErrExist); s != "ipset: element already added (add) or not added (del) (error 4103)" {
		t.Errorf("ErrExist text = %q", s)
	}
}

func TestUsedBeforeOpen(t *testing.T) {
	s := New(Config{})
	if _, err := s.List(); !errors.Is(err, errNotOpen) {
		t.Errorf("List: %v", err)
	}
	if errs := s.Exec([]kernel.SetOp{{}}); !errors.Is(errs[0], errNotOpen) {
		t.Errorf("Exec: %v", errs[0])
	}
}
