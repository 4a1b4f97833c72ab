package ipvs

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// procLine formats lines exactly as ip_vs_info_seq_show does.
func procService(proto string, addr uint32, port uint16, sched, ops, persistent string) string {
	return fmt.Sprintf("%s  %08X:%04X %s %s %s\n", proto, addr, port, sched, ops, persistent)
}

func procDest(addr uint32, port uint16, fwd string, w, active, inactive int) string {
	return fmt.Sprintf("  -> %08X:%04X      %-7s %-6d %-10d %-10d\n", addr, port, fwd, w, active, inactive)
}

const procHead = "IP Virtual Server version 1.2.1 (size=4096)\n" +
	"Prot LocalAddress:Port Scheduler Flags\n" +
	"  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n"

func rs(addr string, port uint16, fwd uint32, w int32, active, inactive uint32) state.RealServer {
	return state.RealServer{Key: state.RSKey{Addr: netip.MustParseAddr(addr), Port: port}, Forward: fwd, Weight: w,
		ActiveConns: active, InactiveConns: inactive}
}

func rsMap(list ...state.RealServer) map[state.RSKey]state.RealServer {
	m := map[state.RSKey]state.RealServer{}
	for _, r := range list {
		m[r.Key] = r
	}
	return m
}

func TestParseProc(t *testing.T) {
	text := procHead +
		procService("TCP", 0x0A600001, 80, "rr", "", "") +
		procDest(0x0AF40102, 8080, "Masq", 1, 3, 12) +
		procDest(0x0AF40103, 8080, "Route", 0, 0, 0) +
		procDest(0x0AF40104, 8080, "Tunnel", 5, 0, 1) +
		procDest(0x0AF40105, 8080, "Local", 100, 0, 0) +
		procService("UDP", 0x0A60000A, 53, "sh", "ops ", "persistent 10800 FFFFFF00") +
		procDest(0x0AF40209, 53, "Masq", 1, 0, 0) +
		// A firewall-mark service and its real server are left out.
		"FWM  00000001 rr \n" +
		procDest(0x0AF40301, 80, "Masq", 1, 0, 0) +
		"SCTP  [fd00:0000:0000:0000:0000:0000:0000:000a]:0050 mh \n" +
		"  -> [fd00:0000:0000:0000:0000:0000:0001:0002]:0050      Masq    2      0          0         \n" +
		// A service without real servers.
		procService("TCP", 0x0A600002, 443, "wlc", "", "")
	got, err := parseProc(bufio.NewReader(strings.NewReader(text)))
	if err != nil {
		t.Fatal(err)
	}
	want := procDests{
		key(state.TCP, "10.96.0.1", 80): rsMap(rs("10.244.1.2", 8080, 0, 1, 3, 12), rs("10.244.1.3", 8080, 3, 0, 0, 0),
			rs("10.244.1.4", 8080, 2, 5, 0, 1), rs("10.244.1.5", 8080, 1, 100, 0, 0)),
		key(state.UDP, "10.96.0.10", 53): rsMap(rs("10.244.2.9", 53, 0, 1, 0, 0)),
		key(state.SCTP, "fd00::a", 80):   rsMap(rs("fd00::1:2", 80, 0, 2, 0, 0)),
		key(state.TCP, "10.96.0.2", 443): rsMap(),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseProc:\n got %v\nwant %v", got, want)
	}
}

func TestParseProcEmptyTable(t *testing.T) {
	got, err := parseProc(bufio.NewReader(strings.NewReader(procHead)))
	if err != nil || len(got) != 0 {
		t.Errorf("parseProc(header only) = %v, %v", got, err)
	}
}

// A record listed twice (the listing is read in pieces while the table may
// change) keeps its last version.
func TestParseProcRepeatedService(t *testing.T) {
	text := procHead +
		procService("TCP", 0x0A600001, 80, "rr", "", "") + procDest(0x0AF40102, 8080, "Masq", 1, 0, 0) +
		procService("TCP", 0x0A600001, 80, "rr", "", "") + procDest(0x0AF40103, 8080, "Masq", 1, 0, 0)
	got, err := parseProc(bufio.NewReader(strings.NewReader(text)))
	if err != nil {
		t.Fatal(err)
	}
	want := procDests{key(state.TCP, "10.96.0.1", 80): rsMap(rs("10.244.1.3", 8080, 0, 1, 0, 0))}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestParseProcRejectsUnknownFormat(t *testing.T) {
	for name, text := range map[string]string{
		"empty":          "",
		"other file":     "Some other listing\n",
		"short dest":     procHead + procService("TCP", 0x0A600001, 80, "rr", "", "") + "  -> 0AF40102:1F90      Masq    1\n",
		"bad address":    procHead + "TCP  A6001:0050 rr \n",
		"bad port":       procHead + "TCP  0A600001:50 rr \n",
		"unknown method": procHead + procService("TCP", 0x0A600001, 80, "rr", "", "") + procDest(0x0AF40102, 8080, "Magic", 1, 0, 0),
		"bad weight":     procHead + procService("TCP", 0x0A600001, 80, "rr", "", "") + "  -> 0AF40102:1F90      Masq    x      0          0\n",
		"bad ipv6":       procHead + "TCP  [10.0.0.1]:0050 rr \n",
	} {
		if _, err := parseProc(bufio.NewReader(strings.NewReader(text))); !errors.Is(err, errProcFormat) {
			t.Errorf("%s: err = %v, want errProcFormat", name, err)
		}
	}
}

func TestDecInt32(t *testing.T) {
	for in, want := range map[string]int32{"0": 0, "1": 1, "-1": -1, "2147483647": 2147483647, "-2147483648": -2147483648} {
		if got, ok := decInt32([]byte(in)); !ok || got != want {
			t.Errorf("decInt32(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "-", "2147483648", "1x", "99999999999"} {
		if _, ok := decInt32([]byte(in)); ok {
			t.Errorf("decInt32(%q) succeeded", in)
		}
	}
}

// BenchmarkParseProc parses a listing of 10,000 virtual servers with 10 real
// servers each (6.3 MB, what the kernel prints for that table).
func BenchmarkParseProc(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(procHead)
	for i := range 10000 {
		sb.WriteString(procService("TCP", 0x0A600000+uint32(i), 80, "rr", "", ""))
		for j := range 10 {
			sb.WriteString(procDest(0x0A800000+uint32(i*10+j), 8080, "Masq", 1, 0, 0))
		}
	}
	text := sb.String()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseProc(bufio.NewReaderSize(strings.NewReader(text), 64<<10)); err != nil {
			b.Fatal(err)
		}
	}
}
