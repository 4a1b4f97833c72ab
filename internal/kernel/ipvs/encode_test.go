package ipvs

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"golang.org/x/sys/unix"
)

const testFamily = 0x1d

func key(proto state.Protocol, addr string, port uint16) state.VSKey {
	return state.VSKey{Proto: proto, Addr: netip.MustParseAddr(addr), Port: port}
}

// body returns a request's bytes after the netlink header, which is what a
// dump message of the same command carries.
func body(t *testing.T, req []byte) []byte {
	t.Helper()
	msgs, err := nlbatch.ParseMessages(req)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("ParseMessages = %v, %v", msgs, err)
	}
	if msgs[0].Header.Type != testFamily {
		t.Fatalf("message type %d, want the family id", msgs[0].Header.Type)
	}
	return msgs[0].Data
}

func TestServiceRoundTrip(t *testing.T) {
	for _, vs := range []state.VirtualServer{
		{Key: key(state.TCP, "10.96.0.10", 80), Scheduler: "rr", PersistenceBits: 32},
		{Key: key(state.UDP, "10.96.0.10", 53), Scheduler: "sh", Flags: state.FlagSched1 | state.FlagSched2, PersistenceBits: 32},
		{Key: key(state.TCP, "10.96.0.11", 443), Scheduler: "wrr", Flags: state.FlagPersistent, Timeout: 10800, PersistenceBits: 24},
		{Key: key(state.SCTP, "fd00::a", 9), Scheduler: "lc", Flags: state.FlagPersistent | state.FlagOnePacket, Timeout: 60, PersistenceBits: 64},
		{Key: key(state.TCP, "fd00::b", 80), Scheduler: "mh", PersistenceBits: 128},
	} {
		req, err := encodeOp(testFamily, kernel.IPVSOp{Cmd: kernel.AddService, VS: vs})
		if err != nil {
			t.Fatalf("%s: %v", vs.Key, err)
		}
		got, ok, err := parseService(body(t, req))
		if err != nil || !ok {
			t.Fatalf("%s: parseService = %v, %v", vs.Key, ok, err)
		}
		if got != vs {
			t.Errorf("round trip of %s:\n got %+v\nwant %+v", vs.Key, got, vs)
		}
	}
}

func TestServiceWireFormat(t *testing.T) {
	vs := state.VirtualServer{Key: key(state.TCP, "10.96.0.11", 443), Scheduler: "wrr", Flags: state.FlagPersistent, Timeout: 10800, PersistenceBits: 24}
	req, err := encodeOp(testFamily, kernel.IPVSOp{Cmd: kernel.AddService, VS: vs})
	if err != nil {
		t.Fatal(err)
	}
	b := body(t, req)
	if b[0] != cmdNewService || b[1] != genlVersion {
		t.Errorf("genl header = %v", b[:4])
	}
	attrs, err := nestedAttrs(b, cmdAttrService)
	if err != nil {
		t.Fatal(err)
	}
	byType := map[uint16][]byte{}
	for _, a := range attrs {
		byType[a.Type] = a.Value
	}
	for typ, want := range map[uint16][]byte{
		svcAttrAF:        {unix.AF_INET, 0},
		svcAttrProtocol:  {6, 0},
		svcAttrAddr:      {10, 96, 0, 11},
		svcAttrPort:      {0x01, 0xbb},
		svcAttrSchedName: []byte("wrr\x00"),
		svcAttrTimeout:   binary.NativeEndian.AppendUint32(nil, 10800),
		svcAttrNetmask:   {0xff, 0xff, 0xff, 0x00},
		svcAttrFlags:     binary.NativeEndian.AppendUint32(binary.NativeEndian.AppendUint32(nil, 1), state.ManagedFlags),
	} {
		if string(byType[typ]) != string(want) {
			t.Errorf("attribute %d = %v, want %v", typ, byType[typ], want)
		}
	}
}

func TestParseServiceMasksHashedAndKeysFWMark(t *testing.T) {
	m := nlbatch.NewMessage(testFamily, 0).Header([]byte{cmdNewService, 1, 0, 0}).
		Begin(cmdAttrService).
		U16(svcAttrAF, unix.AF_INET).U16(svcAttrProtocol, 6).
		Attr(svcAttrAddr, make([]byte, 16)).BE16(svcAttrPort, 80).
		Attr(svcAttrFlags, []byte{3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}).
		End()
	vs, ok, err := parseService(body(t, m.Bytes()))
	if err != nil || !ok || vs.Flags != state.FlagPersistent {
		t.Errorf("parseService = %+v, %v, %v; want flags 1", vs, ok, err)
	}
	// the kernel dumps a firewall-mark service with its family and mark only
	for af, want := range map[uint16]state.VSKey{unix.AF_INET: state.FWMarkKey(7, state.IPv4), unix.AF_INET6: state.FWMarkKey(7, state.IPv6)} {
		m = nlbatch.NewMessage(testFamily, 0).Header([]byte{cmdNewService, 1, 0, 0}).
			Begin(cmdAttrService).U16(svcAttrAF, af).U32(svcAttrFWMark, 7).String(svcAttrSchedName, "rr").End()
		if vs, ok, err := parseService(body(t, m.Bytes())); !ok || err != nil || vs.Key != want {
			t.Errorf("fwmark service (af %d): %+v, ok %v, err %v; want key %v", af, vs, ok, err, want)
		}
	}
}

// TestFWMarkServiceWireFormat: a firewall-mark service is sent as its
// family and mark, without protocol, address and port (the kernel refuses
// both at once), and its destinations are dumped by the same key.
func TestFWMarkServiceWireFormat(t *testing.T) {
	vs := state.VirtualServer{Key: state.FWMarkKey(0x12, state.IPv6), Scheduler: "rr"}
	req, err := encodeOp(testFamily, kernel.IPVSOp{Cmd: kernel.AddService, VS: vs})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := nestedAttrs(body(t, req), cmdAttrService)
	if err != nil {
		t.Fatal(err)
	}
	byType := map[uint16][]byte{}
	for _, a := range attrs {
		byType[a.Type] = a.Value
	}
	if string(byType[svcAttrAF]) != string([]byte{unix.AF_INET6, 0}) || string(byType[svcAttrFWMark]) != string(binary.NativeEndian.AppendUint32(nil, 0x12)) {
		t.Errorf("af %v, mark %v", byType[svcAttrAF], byType[svcAttrFWMark])
	}
	for _, typ := range []uint16{svcAttrProtocol, svcAttrAddr, svcAttrPort} {
		if _, ok := byType[typ]; ok {
			t.Errorf("attribute %d sent with a firewall mark", typ)
		}
	}
	got, ok, err := parseService(body(t, req))
	if !ok || err != nil || !got.SameConfig(vs) {
		t.Errorf("round trip: %+v, %v, %v", got, ok, err)
	}
}

func TestDestRoundTrip(t *testing.T) {
	vs := state.VirtualServer{Key: key(state.TCP, "10.96.0.10", 80), Scheduler: "rr"}
	for _, rs := range []state.RealServer{
		{Key: state.RSKey{Addr: netip.MustParseAddr("10.244.1.7"), Port: 8080}, Weight: 1},
		{Key: state.RSKey{Addr: netip.MustParseAddr("10.244.1.8"), Port: 80}, Weight: 0},
		{Key: state.RSKey{Addr: netip.MustParseAddr("fd00::7"), Port: 80}, Weight: 65536},
	} {
		req, err := encodeOp(testFamily, kernel.IPVSOp{Cmd: kernel.AddDest, VS: vs, RS: rs})
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseDest(body(t, req), unix.AF_INET)
		if err != nil {
			t.Fatal(err)
		}
		if got != rs {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, rs)
		}
	}
}

func TestDeleteCarriesOnlyKeys(t *testing.T) {
	vs := state.VirtualServer{Key: key(state.TCP, "10.96.0.10", 80)} // no scheduler: not needed
	rs := state.RealServer{Key: state.RSKey{Addr: netip.MustParseAddr("10.244.1.7"), Port: 80}}
	for _, op := range []kernel.IPVSOp{{Cmd: kernel.DelService, VS: vs}, {Cmd: kernel.DelDest, VS: vs, RS: rs}} {
		req, err := encodeOp(testFamily, op)
		if err != nil {
			t.Fatalf("cmd %d: %v", op.Cmd, err)
		}
		attrs, _ := nestedAttrs(body(t, req), cmdAttrService)
		for _, a := range attrs {
			if a.Type == svcAttrSchedName || a.Type == svcAttrFlags {
				t.Errorf("cmd %d carries service attribute %d", op.Cmd, a.Type)
			}
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	for name, op := range map[string]kernel.IPVSOp{
		"no scheduler": {Cmd: kernel.AddService, VS: state.VirtualServer{Key: key(state.TCP, "10.0.0.1", 80)}},
		"bad netmask":  {Cmd: kernel.AddService, VS: state.VirtualServer{Key: key(state.TCP, "10.0.0.1", 80), Scheduler: "rr", Flags: state.FlagPersistent, PersistenceBits: 33}},
		"no address":   {Cmd: kernel.DelService},
		"bad command":  {Cmd: 99, VS: state.VirtualServer{Key: key(state.TCP, "10.0.0.1", 80)}},
	} {
		if _, err := encodeOp(testFamily, op); !errors.Is(err, errEncode) {
			t.Errorf("%s: %v, want errEncode", name, err)
		}
	}
}

func TestParseConfig(t *testing.T) {
	m := nlbatch.NewMessage(testFamily, 0).Header([]byte{cmdGetConfig, 1, 0, 0}).
		U32(cmdAttrTimeoutTCP, 900).U32(cmdAttrTimeoutTCPFin, 120).U32(cmdAttrTimeoutUDP, 300)
	got, err := parseConfig(body(t, m.Bytes()))
	want := state.Timeouts{TCP: 900e9, TCPFin: 120e9, UDP: 300e9}
	if err != nil || got != want {
		t.Errorf("parseConfig = %+v, %v", got, err)
	}
}

func TestUsedBeforeOpen(t *testing.T) {
	v := New(Config{})
	if _, err := v.Dump(); !errors.Is(err, errNotOpen) {
		t.Errorf("Dump before Open: %v", err)
	}
	if errs := v.Exec([]kernel.IPVSOp{{Cmd: kernel.DelService}}); !errors.Is(errs[0], errNotOpen) {
		t.Errorf("Exec before Open: %v", errs[0])
	}
}

// On a kernel without IPVS (this project's development machines), Open says
// what to do. Looking up a generic netlink family needs no privilege.
func TestOpenWithoutIPVS(t *testing.T) {
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		t.Skip("this kernel has IPVS")
	}
	err := New(Config{}).Open()
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open = %v, want ErrUnavailable", err)
	}
	t.Log(err)
}
