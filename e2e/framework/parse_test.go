package framework

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseIPSetMembers(t *testing.T) {
	out := `Name: KUBE-CLUSTER-IP
Type: hash:ip,port
Revision: 6
Header: family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x5c3f6d9e
Size in memory: 264
References: 1
Number of entries: 2
Members:
10.96.0.10,tcp:80
10.96.0.10,udp:53
`
	got := parseIPSetMembers(out)
	want := []string{"10.96.0.10,tcp:80", "10.96.0.10,udp:53"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("members = %q, want %q", got, want)
	}
	if got := parseIPSetMembers("Name: X\nMembers:\n"); got != nil {
		t.Errorf("empty set: members = %q, want none", got)
	}
}

func TestParseAddrs(t *testing.T) {
	out := `5: kube-ipvs0    inet 10.96.0.10/32 scope global kube-ipvs0\       valid_lft forever preferred_lft forever
5: kube-ipvs0    inet 10.96.0.11/32 scope global kube-ipvs0\       valid_lft forever preferred_lft forever
5: kube-ipvs0    inet6 fd00::a/128 scope global \       valid_lft forever preferred_lft forever
`
	got := parseAddrs(out)
	want := []string{"10.96.0.10/32", "10.96.0.11/32", "fd00::a/128"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("addrs = %q, want %q", got, want)
	}
}

func TestTail(t *testing.T) {
	if got := tail("a\nb\nc\n", 2); got != "b\nc" {
		t.Errorf("tail = %q", got)
	}
	if got := tail("a", 5); got != "a" {
		t.Errorf("tail = %q", got)
	}
}

func TestLoadErrorsIgnoreLocalPort(t *testing.T) {
	a := localAddr.ReplaceAllString("read tcp 10.10.0.1:41234->10.96.0.10:80: i/o timeout", "")
	b := localAddr.ReplaceAllString("read tcp 10.10.0.1:52345->10.96.0.10:80: i/o timeout", "")
	if a != b || a != "read tcp 10.96.0.10:80: i/o timeout" {
		t.Errorf("normalized errors differ: %q vs %q", a, b)
	}
}

func TestParseIPVSADM(t *testing.T) {
	out := `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  203.0.113.10:80 mh (mh-port) persistent 10800
  -> 10.244.1.2:8080              Masq    1      0          0         
  -> 10.244.2.2:8080              Masq    0      1          3         
UDP  10.96.0.53:53 rr
TCP  192.0.2.50:80 wlc
  -> 10.244.1.2:8080              Masq    1      0          0         
`
	got, err := parseIPVSADM(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []VirtualServer{
		{Proto: "TCP", Addr: "203.0.113.10:80", Scheduler: "mh", SchedFlags: "mh-port", Persistent: 10800,
			Line: "TCP  203.0.113.10:80 mh (mh-port) persistent 10800",
			RealServers: []RealServer{
				{Addr: "10.244.1.2:8080", Forward: "Masq", Weight: 1},
				{Addr: "10.244.2.2:8080", Forward: "Masq", Weight: 0, ActiveConn: 1, InActConn: 3},
			}},
		{Proto: "UDP", Addr: "10.96.0.53:53", Scheduler: "rr", Line: "UDP  10.96.0.53:53 rr"},
		{Proto: "TCP", Addr: "192.0.2.50:80", Scheduler: "wlc", Line: "TCP  192.0.2.50:80 wlc",
			RealServers: []RealServer{{Addr: "10.244.1.2:8080", Forward: "Masq", Weight: 1}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parsed\n%+v\nwant\n%+v", got, want)
	}
	if vs := FindVirtualServer(got, "TCP", "203.0.113.10:80"); vs == nil || vs.RealServer("10.244.2.2:8080").InActConn != 3 {
		t.Errorf("FindVirtualServer/RealServer: %+v", vs)
	}
	if _, err := parseIPVSADM("  -> 10.244.1.2:8080 Masq 1 0 0\n"); err == nil {
		t.Error("a real server before any virtual server parsed without error")
	}
}

func TestParseTotalConns(t *testing.T) {
	out := `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.96.0.10:80                      66      396      330    26070    36354
  -> 10.244.1.2:8080                    22      132      110     8690    12118
`
	n, err := parseTotalConns(out, "TCP", "10.96.0.10:80")
	if err != nil || n != 66 {
		t.Errorf("conns = %d, %v; want 66", n, err)
	}
	if _, err := parseTotalConns(out, "UDP", "10.96.0.10:80"); err == nil {
		t.Error("missing virtual server: no error")
	}
}

func TestSyncFollower(t *testing.T) {
	path := filepath.Join(t.TempDir(), "syncs.jsonl")
	old := `{"v":1,"seq":1,"type":"full","start":"2026-11-23T01:59:40Z","end":"2026-11-23T01:59:41Z","ops":40}` + "\n"
	writeFile := func(text string, appendTo bool) {
		flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
		if appendTo {
			flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
		}
		f, err := os.OpenFile(path, flags, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(text); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(old, false)
	// The daemon restarts: the follower starts at the file's size.
	f := FollowSyncs(path, FileSize(path))
	full := `{"v":1,"seq":1,"type":"full","start":"2026-11-23T01:59:46Z","end":"2026-11-23T01:59:46.009Z","services":1,"ops":2,` +
		`"planned":["edit-vs -E -t 10.96.0.10:80 -s sh","sync-rules ipv4"]}` + "\n"
	partial := `{"v":1,"seq":2,"type":"partial","start":"2026-11-23T01:59:47Z","end":"2026-11-23T01:59:47.001Z","services":1,"ops":1,` +
		`"failed":1,"errors":["add real server: file exists"]}` + "\n"
	writeFile(full+partial[:40], true) // the second line is being written
	syncs, err := f.All()
	if err != nil || len(syncs) != 1 || syncs[0].Ops != 2 || syncs[0].Took() != 9*time.Millisecond || len(syncs[0].Planned) != 2 {
		t.Fatalf("after one and a half lines: %+v, %v", syncs, err)
	}
	writeFile(partial[40:], true)
	if s, ok, err := f.Take(Wrote); !ok || err != nil || s.Type != "full" {
		t.Fatalf("take: %v %v %v", s, ok, err)
	}
	s, err := f.Next(time.Second, nil, nil)
	if err != nil || s.Type != "partial" || !s.Incomplete() || s.String() != "partial incomplete: services 1, ops 1, failed 1, messages 0, took 1ms" {
		t.Fatalf("next: %v, %v", s, err)
	}
	if _, err := f.Next(50*time.Millisecond, nil, IsFull); err == nil {
		t.Error("no more syncs, yet Next found one")
	}
	writeFile("not json\n", true)
	if _, err := f.All(); err == nil {
		t.Error("a broken line was not reported")
	}
}

func TestParseConns(t *testing.T) {
	out := `IPVS connection entries
pro expire state       source             virtual            destination
TCP 179:59 ASSURED     10.250.0.2:0       10.96.0.10:80      10.244.2.2:8080
UDP 04:58  UDP         10.250.0.2:40000   10.96.0.53:53      10.244.1.2:53
`
	got := parseConns(out)
	want := []Conn{
		{"TCP", "179:59", "ASSURED", "10.250.0.2:0", "10.96.0.10:80", "10.244.2.2:8080"},
		{"UDP", "04:58", "UDP", "10.250.0.2:40000", "10.96.0.53:53", "10.244.1.2:53"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("conns\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseMetrics(t *testing.T) {
	out := `# HELP ipvsproxy_service_connections_total Connections IPVS scheduled for a Service port.
# TYPE ipvsproxy_service_connections_total counter
ipvsproxy_service_connections_total{namespace="default",port="http",service="web"} 42
ipvsproxy_service_bytes_total{direction="in",namespace="default",port="http",service="web"} 1.2345e+06
kubeproxy_sync_proxy_rules_last_timestamp_seconds 1.7e+09
`
	got, err := parseMetrics(out)
	if err != nil {
		t.Fatal(err)
	}
	want := Metrics{
		`ipvsproxy_service_connections_total{namespace="default",port="http",service="web"}`:          42,
		`ipvsproxy_service_bytes_total{direction="in",namespace="default",port="http",service="web"}`: 1234500,
		`kubeproxy_sync_proxy_rules_last_timestamp_seconds`:                                           1.7e9,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("metrics\n%v\nwant\n%v", got, want)
	}
	if _, err := parseMetrics("no_value_here\n"); err == nil {
		t.Error("a line without a value was accepted")
	}
}

func TestParseNFTSet(t *testing.T) {
	for _, tt := range []struct{ out, want string }{
		{`{"nftables": [{"metainfo": {"json_schema_version": 1}}, {"set": {"family": "ip", "name": "cluster-ip", "elem": [{"concat": ["10.96.0.10", "udp", 53]}, {"concat": ["10.96.0.10", "tcp", 80]}]}}]}`,
			"10.96.0.10,tcp:80 10.96.0.10,udp:53"},
		{`{"nftables": [{"metainfo": {}}, {"set": {"name": "src", "elem": [{"concat": ["10.96.0.10", "tcp", 80, {"prefix": {"addr": "10.0.0.0", "len": 8}}]}, {"concat": ["10.96.0.10", "tcp", 80, "192.168.0.1"]}]}}]}`,
			"10.96.0.10,tcp:80,10.0.0.0/8 10.96.0.10,tcp:80,192.168.0.1"},
		{`{"nftables": [{"metainfo": {}}, {"set": {"name": "np", "type": "inet_service", "elem": [30080]}}]}`, "30080"},
		{`{"nftables": [{"metainfo": {}}, {"set": {"name": "ips", "elem": ["10.96.0.10"]}}]}`, "10.96.0.10"},
		{`{"nftables": [{"metainfo": {}}, {"set": {"name": "empty"}}]}`, ""},
	} {
		got, err := parseNFTSet(tt.out)
		if err != nil || strings.Join(got, " ") != tt.want {
			t.Errorf("parseNFTSet(%s) = %q, %v; want %q", tt.out, got, err, tt.want)
		}
	}
}
