package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipvs-proxy/ipvs-proxy/internal/syncevent"
)

func TestFitLine(t *testing.T) {
	// 2 s fixed, 1 ms per object, exactly.
	xs := []float64{1000, 1000, 10000, 30000}
	var ys []float64
	for _, x := range xs {
		ys = append(ys, float64(2*time.Second)+x*float64(time.Millisecond))
	}
	f := fitLine(xs, ys)
	if math.Abs(f.fixed-float64(2*time.Second)) > 1 || math.Abs(f.perUnit-float64(time.Millisecond)) > 1e-6 || f.r2 < 0.9999 {
		t.Errorf("fit %+v", f)
	}
	if f := fitLine([]float64{1}, []float64{1}); f.points != 1 || f.perUnit != 0 {
		t.Errorf("one point: %+v", f)
	}
}

func TestDiffStates(t *testing.T) {
	ours := kernelState{partIPVS: {"-A -t 10.96.0.16:80 -s rr", "-a -t 10.96.0.16:80 -r 10.128.0.1:8080 -m -w 1"},
		partRules: {"*nat", "-A KUBE-SERVICES -j KUBE-NODE-PORT"}}
	kp := kernelState{partIPVS: {"-A -t 10.96.0.16:80 -s rr", "-a -t 10.96.0.16:80 -r 10.128.0.1:8080 -m -w 1"},
		partRules: {"*nat", "-A KUBE-LOOP-BACK -j MASQUERADE", "-A KUBE-SERVICES -j KUBE-NODE-PORT"}}
	d := diffStates(ours, kp)
	if len(d) != 4 || d[0].Same != 2 || d[0].OnlyOurs+d[0].OnlyKubeProxy != 0 {
		t.Fatalf("IPVS part: %+v", d)
	}
	if r := d[3]; r.Same != 2 || r.OnlyOurs != 0 || r.OnlyKubeProxy != 1 || r.KubeProxyExamples[0] != "-A KUBE-LOOP-BACK -j MASQUERADE" {
		t.Errorf("rules part: %+v", r)
	}
}

func TestMonitorClassify(t *testing.T) {
	m := &monitor{ipvsFamily: 30}
	for _, c := range []struct {
		proto int
		typ   uint16
		data  []byte
		want  string
	}{
		{unix.NETLINK_GENERIC, 30, []byte{5}, "ipvs write"}, // NEW_DEST
		{unix.NETLINK_GENERIC, 30, []byte{4}, "ipvs read"},  // GET_SERVICE
		{unix.NETLINK_GENERIC, 16, []byte{3}, "genl other"}, // the controller
		{unix.NETLINK_ROUTE, unix.RTM_NEWADDR, nil, "address write"},
		{unix.NETLINK_ROUTE, unix.RTM_GETADDR, nil, "route read"},
		{unix.NETLINK_NETFILTER, unix.NFNL_SUBSYS_IPSET<<8 | 9, nil, "ipset write"}, // ADD
		{unix.NETLINK_NETFILTER, unix.NFNL_SUBSYS_IPSET<<8 | 7, nil, "ipset read"},  // LIST
		{unix.NETLINK_NETFILTER, unix.NFNL_SUBSYS_NFTABLES<<8 | 6, nil, "nftables write"},
		{unix.NETLINK_NETFILTER, unix.NFNL_SUBSYS_NFTABLES<<8 | 16, nil, "nftables read"},
		{unix.NETLINK_NETFILTER, 0x10, nil, ""}, // batch begin
	} {
		if got := m.classify(c.proto, c.typ, c.data); got != c.want {
			t.Errorf("protocol %d type %#x: %q, want %q", c.proto, c.typ, got, c.want)
		}
	}
	c := Counts{"ipvs write": 5, "address write": 1, "ipset write": 2, "nftables write": 7, "ipvs read": 3}
	if c.Writes() != 8 || reads(c) != 3 || c.Sub(Counts{"ipvs write": 5}).String() != "address write 1, ipset write 2, ipvs read 3, nftables write 7" {
		t.Errorf("counts %v: writes %d, reads %d, %s", c, c.Writes(), reads(c), c.Sub(Counts{"ipvs write": 5}))
	}
}

// A report of made-up results has every section and computes the ratios.
func TestReport(t *testing.T) {
	cold := func(total time.Duration) ColdStart {
		return ColdStart{Time: total, Sync: total / 2, Init: 100 * time.Millisecond, Messages: 16426, PeakRSS: 60e6,
			Phases: []syncevent.Phase{{Name: "source", Took: total / 4}, {Name: "apply/ipvs", Took: total / 3}}}
	}
	scale := func(n int, ours, floor time.Duration) *ScaleResult {
		s := &ScaleResult{N: n, VirtualServers: n, RealServers: 10 * n, Members: 2 * n, Addresses: n, SyncEvery: time.Minute}
		for range 3 {
			s.Floor = append(s.Floor, FloorSample{FloorRun: FloorRun{Kernel: floor / 2, IPVS: floor / 3}, Wall: floor})
			s.Tools = append(s.Tools, ToolsRun{Total: 5 * floor, IPVSADM: 4 * floor})
			s.Ours = append(s.Ours, cold(ours))
		}
		for _, k := range []string{"endpoint added", "Service added"} {
			s.Changes = append(s.Changes, Change{Kind: k, SinceChange: time.Duration(n/100+4) * time.Millisecond, Ops: 1, WantOps: 1, Messages: 1})
		}
		s.Resyncs = []Resync{{Took: time.Duration(n) * 100 * time.Microsecond}}
		s.PeakRSS = int64(n) * 12000
		return s
	}
	res := &Results{Kernel: "6.1", CPUs: 2, MemoryMiB: 6000, Scale: []*ScaleResult{
		scale(100, 2*time.Second, 100*time.Millisecond), scale(1000, 4*time.Second, time.Second), scale(10000, 30*time.Second, 10*time.Second)}}
	res.Scale[1].Counted = &Counted{ColdStart: Counts{"ipvs write": 13200}, Messages: 16426,
		Changes: []Change{{Kind: "endpoint added", Messages: 1, Ops: 1, WantOps: 1, Counted: Counts{"ipvs write": 1}}},
		Resync:  &Resync{Counted: Counts{"ipvs read": 2}}}
	res.Datapath = &DatapathResult{Workers: 4, Trial: time.Second, KeepAliveDirect: []float64{1000, 1200}, KeepAliveVIP: []float64{900, 950},
		NewConnDirect: []float64{300}, NewConnVIP: []float64{290}}
	var b strings.Builder
	w := &reportWriter{w: &b}
	w.render(res, nil, "make bench", "2 CPUs")
	out := b.String()
	for _, want := range []string{
		"| Cold start ≤ 1.5× the floor at every N from 1,000 | 1,000: 4.00×, 10,000: 3.00× | **no** |",
		"| Peak RSS at 10,000 × 10 ≤ 150 MB | 120 MB | yes |",
		"| Every change at 10,000 ≤ 1.5× the same at 100 | 20.80× at worst (endpoint added) | **no** |",
		"| Idle resync at 10,000 ≤ 1 s in the guest | 1.00 s | yes |",
		"| … and the netlink monitor sees exactly the messages the daemon counts | every counted change | yes |",
		"| floor | ", "#### ipvs-proxy's cold start by phase", "not a target under emulation",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
