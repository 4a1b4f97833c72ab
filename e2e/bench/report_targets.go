package main

import (
	"fmt"
	"strings"
	"time"
)

// targets is the summary against the targets.
func (r *reportWriter) targets(res *Results) {
	r.f("#### Against the targets\n\n| Target | Measured | Met |\n|---|---|---|\n")
	var parts []string
	met, any := true, false
	for _, s := range res.Scale {
		if s.N < 1000 || len(s.Floor) == 0 || len(s.Ours) == 0 {
			continue
		}
		x := ratio(oursTimes(s), floorTimes(s))
		parts = append(parts, fmt.Sprintf("%s: %.2f×", num(s.N), x))
		met, any = met && x <= 1.5, true
	}
	if any {
		r.f("| Cold start ≤ 1.5× the floor at every N from 1,000 | %s | %s |\n", strings.Join(parts, ", "), yes(met))
	}
	if s := scaleAt(res, 10000); s != nil && len(s.Ours) > 0 && len(s.Tools) > 0 {
		x := ratio(oursTimes(s), toolTimes(s))
		r.f("| Cold start at 10,000 Services ≤ 1.0× the tools | %.2f× (%s against %s) | %s |\n", x,
			dur(time.Duration(durSpread(oursTimes(s)).med)), dur(time.Duration(durSpread(toolTimes(s)).med)), yes(x <= 1.0))
	}
	for _, n := range []int{10000, 30000} {
		if s := scaleAt(res, n); s != nil && s.PeakRSS > 0 {
			r.f("| Peak RSS at %s × 10 ≤ 150 MB | %s | %s |\n", num(n), mb(s.PeakRSS), yes(s.PeakRSS <= 150e6))
		}
	}
	r.changeTargets(res)
	if s := scaleAt(res, 10000); s != nil && len(s.Resyncs) > 0 {
		var took []time.Duration
		writes := 0
		for _, rs := range s.Resyncs {
			took, writes = append(took, rs.Took), writes+rs.Messages
		}
		t := durSpread(took)
		r.f("| Idle resync at 10,000 ≤ 1 s in the guest | %s | %s |\n", t.durRange(), yes(t.med <= float64(time.Second)))
		r.f("| Idle resync at 10,000 writes nothing | %d kernel messages | %s |\n", writes, yes(writes == 0))
	}
	for _, s := range res.Scale {
		if c := s.Counted; c != nil && c.Resync != nil {
			w := c.Resync.Counted.Writes() + c.Resync.Counted["nftables write"]
			r.f("| … seen from outside (netlink monitor, %s Services) | %d write requests | %s |\n", num(s.N), w, yes(w == 0))
		}
	}
	r.datapathTarget(res)
	r.f("\n")
}

// changeTargets: every change kind at 10,000 within 1.5× of the same at
// 100 and under 100 ms, with exactly the minimal operations.
func (r *reportWriter) changeTargets(res *Results) {
	small, big := scaleAt(res, 100), scaleAt(res, 10000)
	if small != nil && big != nil && len(small.Changes) > 0 && len(big.Changes) > 0 {
		worst, worstKind, slowest, slowestKind := 0.0, "", 0.0, ""
		for _, kind := range changeKinds(big) {
			b, sm := durSpread(sinceChanges(changesOf(big, kind))).med, durSpread(sinceChanges(changesOf(small, kind))).med
			if sm > 0 && b/sm > worst {
				worst, worstKind = b/sm, kind
			}
			if b > slowest {
				slowest, slowestKind = b, kind
			}
		}
		r.f("| Every change at 10,000 ≤ 1.5× the same at 100 | %.2f× at worst (%s) | %s |\n", worst, worstKind, yes(worst <= 1.5))
		r.f("| Every change at 10,000 ≤ 100 ms | %s at worst (%s) | %s |\n", dur(time.Duration(slowest)), slowestKind,
			yes(slowest <= float64(100*time.Millisecond)))
	}
	minimal, seen, counted := true, true, false
	for _, s := range res.Scale {
		for _, c := range s.Changes {
			minimal = minimal && (c.Collided || c.Ops == c.WantOps)
		}
		if s.Counted == nil {
			continue
		}
		for _, c := range s.Counted.Changes {
			counted = true
			seen = seen && c.Counted.Writes() == c.Messages+c.DrainMessages
		}
	}
	if len(res.Scale) > 0 {
		r.f("| One change sends exactly the minimal ops | %s | %s |\n", map[bool]string{true: "every change", false: "see below"}[minimal], yes(minimal))
	}
	if counted {
		r.f("| … and the netlink monitor sees exactly the messages the daemon counts | %s | %s |\n",
			map[bool]string{true: "every counted change", false: "see below"}[seen], yes(seen))
	}
}

// datapathTarget reports the datapath as a target only where the emulator
// can tell the effect from its noise.
func (r *reportWriter) datapathTarget(res *Results) {
	d := res.Datapath
	if d == nil || len(d.KeepAliveDirect) == 0 {
		return
	}
	ka := median(d.KeepAliveVIP) / median(d.KeepAliveDirect)
	nc := median(d.NewConnVIP) / median(d.NewConnDirect)
	noise := datapathNoise(d.KeepAliveDirect, d.NewConnDirect, d.KeepAlivePlainDirect, d.NewConnPlainDirect)
	effect := max(1-ka, 1-nc)
	if effect < noise {
		r.f("| Datapath through a VIP ≥ 0.9× direct | %.2f× keep-alive, %.2f× a connection per request; the direct baselines vary by %.0f%%, more than the %.0f%% shortfall | not a target under emulation |\n",
			ka, nc, noise*100, max(effect, 0)*100)
		return
	}
	r.f("| Datapath through a VIP ≥ 0.9× direct | %.2f× keep-alive, %.2f× a connection per request (direct baselines vary by %.0f%%) | %s |\n",
		ka, nc, noise*100, yes(ka >= 0.9 && nc >= 0.9))
}
