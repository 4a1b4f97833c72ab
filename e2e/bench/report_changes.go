package main

import (
	"fmt"
	"time"
)

// Change, resync and netlink-monitor sections of the report.

func changeKinds(s *ScaleResult) []string {
	return kinds(s.Changes, func(c Change) string { return c.Kind })
}

// changesOf returns the changes of one kind not applied by a periodic sync.
func changesOf(s *ScaleResult, kind string) []Change {
	var out []Change
	for _, c := range s.Changes {
		if c.Kind == kind && !c.Collided {
			out = append(out, c)
		}
	}
	return out
}

func sinceChanges(cs []Change) []time.Duration {
	var out []time.Duration
	for _, c := range cs {
		out = append(out, c.SinceChange)
	}
	return out
}

func (r *reportWriter) changes(res *Results) {
	r.f("#### One change at scale\n\n")
	r.f("Each change is made on an idle daemon (the guest's CPUs idle, no periodic full sync able to start within %s) and timed by the syncs that applied it, then checked in the kernel; a change the kernel never shows fails the run. *sinceChange* is the daemon's: from the manifest source delivering the change to the last kernel acknowledgement; *sync* is the applying sync's own time; *total* adds the source's 1 s poll and re-reading the file. Medians (min–max).\n\n", dur(changeWindow))
	r.f("| Change | Services | sinceChange | sync | total | ops (minimal) | kernel messages | syncs | rounds |\n|---|---|---|---|---|---|---|---|---|\n")
	collided := 0
	for _, kind := range allChangeKinds(res) {
		for _, s := range res.Scale {
			cs := changesOf(s, kind)
			if len(cs) == 0 {
				continue
			}
			var syncs, totals []time.Duration
			var ops, msgs, n []float64
			for _, c := range cs {
				syncs, totals = append(syncs, c.Sync), append(totals, c.Total)
				ops, msgs, n = append(ops, float64(c.Ops)), append(msgs, float64(c.Messages)), append(n, float64(c.Syncs))
			}
			r.f("| %s | %s | %s | %s | %s | %s (%d) | %s | %s | %d |\n", kind, num(s.N), durSpread(sinceChanges(cs)).durRange(),
				durSpread(syncs).durRange(), dur(time.Duration(durSpread(totals).med)), intRange(ops), cs[0].WantOps,
				intRange(msgs), intRange(n), len(cs))
		}
	}
	for _, s := range res.Scale {
		for _, c := range s.Changes {
			if c.Collided {
				collided++
			}
		}
	}
	if collided > 0 {
		r.f("\n%d changes were applied by a periodic full sync despite the wait, and are left out above.\n", collided)
	}
	small, big := scaleAt(res, 100), scaleAt(res, 10000)
	if small != nil && big != nil {
		r.f("\n| Change | 10,000 / 100 (sinceChange medians) | at 10,000 |\n|---|---|---|\n")
		for _, kind := range changeKinds(big) {
			b, sm := durSpread(sinceChanges(changesOf(big, kind))).med, durSpread(sinceChanges(changesOf(small, kind))).med
			if sm > 0 {
				r.f("| %s | %.2f× | %s |\n", kind, b/sm, dur(time.Duration(b)))
			}
		}
	}
	r.f("\n")
}

func allChangeKinds(res *Results) []string {
	var all []Change
	for _, s := range res.Scale {
		all = append(all, s.Changes...)
	}
	return kinds(all, func(c Change) string { return c.Kind })
}

// intRange renders a list of counts as "n" or "lo–hi".
func intRange(xs []float64) string {
	s := spreadOf(xs)
	if s.n == 0 {
		return "–"
	}
	if s.lo == s.hi {
		return num(int(s.lo))
	}
	return num(int(s.lo)) + "–" + num(int(s.hi))
}

// resyncPhases are the phases shown for an idle resync.
var resyncPhases = []string{"compute", "observe/ipvs", "observe/addresses", "observe/ipset", "observe/rules", "observe", "plan"}

func (r *reportWriter) resyncs(res *Results) {
	r.f("#### Idle resync (periodic full sync, nothing changed)\n\n")
	r.f("Its time and phases from its sync event (the four reads of *observe* run at once; *observe* is all of them); CPU is the daemon's during the sync (its CPU times sampled every 100 ms: up to 0.2 s of idle time more).\n\n")
	r.f("| Services | took | CPU (user + system) | write ops | messages")
	for _, p := range resyncPhases {
		r.f(" | %s", p)
	}
	r.f(" |\n|---|---|---|---|---")
	for range resyncPhases {
		r.f("|---")
	}
	r.f("|\n")
	for _, s := range res.Scale {
		if len(s.Resyncs) == 0 {
			continue
		}
		var took, cpu []time.Duration
		var ops, msgs []float64
		by := map[string][]time.Duration{}
		for _, rs := range s.Resyncs {
			took, cpu = append(took, rs.Took), append(cpu, rs.CPU.Total())
			ops, msgs = append(ops, float64(rs.Ops)), append(msgs, float64(rs.Messages))
			for _, p := range resyncPhases {
				by[p] = append(by[p], phaseOf(rs.Phases, p))
			}
		}
		r.f("| %s | %s | %s | %s | %s", num(s.N), durSpread(took).durRange(), dur(time.Duration(durSpread(cpu).med)), intRange(ops), intRange(msgs))
		for _, p := range resyncPhases {
			r.f(" | %s", dur(time.Duration(durSpread(by[p]).med)))
		}
		r.f(" |\n")
	}
	r.f("\n")
}

// counted compares the daemon's own counts with the netlink monitor's.
func (r *reportWriter) counted(res *Results) {
	any := false
	for _, s := range res.Scale {
		any = any || s.Counted != nil
	}
	if !any {
		return
	}
	r.f("#### Counted from outside: a netlink monitor\n\n")
	r.f("An `nlmon` link in the daemon's namespace copies every netlink message to a packet socket of the benchmark, which counts the requests sent to the kernel by subsystem (untimed runs: the copy slows the kernel). *Writes* are the requests that change IPVS, the link and its addresses, and ipsets, which is what the daemon counts as its kernel messages; iptables-restore's nftables requests are shown apart (the daemon counts one message per iptables-restore run).\n\n")
	r.f("| Services | what | ipvs-proxy's count | writes seen | nftables writes seen | reads seen |\n|---|---|---|---|---|---|\n")
	for _, s := range res.Scale {
		c := s.Counted
		if c == nil {
			continue
		}
		r.f("| %s | cold start | %s messages | %s | %s | %s |\n", num(s.N), num(c.Messages), num(c.ColdStart.Writes()),
			num(c.ColdStart["nftables write"]), num(reads(c.ColdStart)))
		for _, kind := range kinds(c.Changes, func(ch Change) string { return ch.Kind }) {
			for _, ch := range c.Changes {
				if ch.Kind != kind {
					continue
				}
				drain := ""
				if ch.DrainMessages > 0 {
					drain = fmt.Sprintf(" + %d (drain)", ch.DrainMessages)
				}
				r.f("| %s | %s | %d%s messages (%d ops; minimal %d) | %s | %s | – |\n", num(s.N), kind, ch.Messages, drain, ch.Ops,
					ch.WantOps, num(ch.Counted.Writes()), num(ch.Counted["nftables write"]))
			}
		}
		if rs := c.Resync; rs != nil {
			r.f("| %s | idle resync | %d messages | %s | %s | %s |\n", num(s.N), rs.Messages, num(rs.Counted.Writes()),
				num(rs.Counted["nftables write"]), num(reads(rs.Counted)))
		}
	}
	r.f("\nA removed endpoint is counted with the drain check's deletion of its real server, which follows it.\n\n")
}

func reads(c Counts) int {
	n := 0
	for k, v := range c {
		if len(k) > 5 && k[len(k)-5:] == " read" {
			n += v
		}
	}
	return n
}
