package main

import (
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/syncevent"
)

// Cold start sections of the report.

// times returns one duration of each of xs.
func times[T any](xs []T, of func(T) time.Duration) []time.Duration {
	out := make([]time.Duration, 0, len(xs))
	for _, x := range xs {
		out = append(out, of(x))
	}
	return out
}

func floorTimes(s *ScaleResult) []time.Duration {
	return times(s.Floor, func(f FloorSample) time.Duration { return f.Wall })
}

func floorKernelTimes(s *ScaleResult) []time.Duration {
	return times(s.Floor, func(f FloorSample) time.Duration { return f.Kernel })
}

func toolTimes(s *ScaleResult) []time.Duration {
	return times(s.Tools, func(t ToolsRun) time.Duration { return t.Total })
}

func oursTimes(s *ScaleResult) []time.Duration {
	return times(s.Ours, func(o ColdStart) time.Duration { return o.Time })
}

// objects is the number of kernel objects a cold start makes at one N.
func (s *ScaleResult) objects() int {
	return s.VirtualServers + s.RealServers + s.Members + s.Addresses
}

func cpuSpread(cs []framework.CPUTimes) (user, sys spread) {
	var us, ss []time.Duration
	for _, c := range cs {
		us, ss = append(us, c.User), append(ss, c.System)
	}
	return durSpread(us), durSpread(ss)
}

func ratio(a, b []time.Duration) float64 {
	if m := durSpread(b).med; m > 0 {
		return durSpread(a).med / m
	}
	return 0
}

func (r *reportWriter) coldStart(res *Results) {
	r.f("#### Cold start: empty kernel to fully programmed\n\n")
	r.f("Each repetition in a fresh network namespace, the three sides interleaved; medians with (min–max) over the repetitions. ")
	r.f("**Floor**: the floor loader, a prebuilt program of the benchmark, from its start to its exit: it reads the manifests and computes the desired state with ipvs-proxy's own code, then sends ipvs-proxy's own requests as batched as netlink allows (megabytes per sendmsg, no acknowledgement asked for but the last, set members packed many per request); *its kernel part* is the sending alone. ")
	r.f("**Tools**: `ip -batch`, `ipset restore`, `ipvsadm -R`, wall times summed, from the plan's output. ")
	r.f("**ipvs-proxy**: from starting the process to the end of its first full sync (its sync event), reading the manifests, the iptables rules and the sysctls included, which neither the floor nor the tools do.\n\n")
	r.f("| Services | virtual / real servers | set members / addresses | floor | its kernel part | tools | ipvs-proxy | ipvs-proxy / floor | ipvs-proxy / tools | ipvs-proxy's kernel messages | tools' requests | peak RSS |\n")
	r.f("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range res.Scale {
		var rss []time.Duration
		msgs := 0
		for _, o := range s.Ours {
			rss, msgs = append(rss, time.Duration(o.PeakRSS)), o.Messages
		}
		r.f("| %s | %s / %s | %s / %s | %s | %s | %s | %s | %.2f× | %.2f× | %s | %s | %s |\n", num(s.N), num(s.VirtualServers),
			num(s.RealServers), num(s.Members), num(s.Addresses), durSpread(floorTimes(s)).durRange(), durSpread(floorKernelTimes(s)).durRange(),
			durSpread(toolTimes(s)).durRange(), durSpread(oursTimes(s)).durRange(), ratio(oursTimes(s), floorTimes(s)),
			ratio(oursTimes(s), toolTimes(s)), num(msgs), num(s.ToolLines), mb(int64(durSpread(rss).med)))
	}
	r.f("\nCPU time (user + system, from /proc: the process and the children it waited for), medians:\n\n")
	r.f("| Services | floor: user / system | tools: user / system | ipvs-proxy: user / system | ipvs-proxy's CPU / wall |\n|---|---|---|---|---|\n")
	for _, s := range res.Scale {
		var fl, tl, ol []framework.CPUTimes
		for _, f := range s.Floor {
			fl = append(fl, f.CPU)
		}
		for _, t := range s.Tools {
			tl = append(tl, t.CPU)
		}
		for _, o := range s.Ours {
			ol = append(ol, o.CPU)
		}
		fu, fs := cpuSpread(fl)
		tu, ts := cpuSpread(tl)
		ou, os := cpuSpread(ol)
		share := 0.0
		if w := durSpread(oursTimes(s)).med; w > 0 {
			share = (ou.med + os.med) / w
		}
		r.f("| %s | %s / %s | %s / %s | %s / %s | %.0f%% |\n", num(s.N), dur(time.Duration(fu.med)),
			dur(time.Duration(fs.med)), dur(time.Duration(tu.med)), dur(time.Duration(ts.med)), dur(time.Duration(ou.med)),
			dur(time.Duration(os.med)), share*100)
	}
	r.f("\nThe floor and the tools by part, medians:\n\n")
	r.f("| Services | floor: read | compute | encode | link and addresses | sets | IPVS | requests / sendmsgs | ip -batch | ipset restore | ipvsadm -R |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range res.Scale {
		var rd, cp, en, fl, fs, fi, ti, tset, tv []time.Duration
		reqs, sends := 0, 0
		for _, f := range s.Floor {
			rd, cp, en = append(rd, f.Read), append(cp, f.Compute), append(en, f.Encode)
			fl, fs, fi = append(fl, f.Link), append(fs, f.Sets), append(fi, f.IPVS)
			reqs, sends = f.Requests, f.Sendmsgs
		}
		for _, t := range s.Tools {
			ti, tset, tv = append(ti, t.IP), append(tset, t.IPSet), append(tv, t.IPVSADM)
		}
		r.f("| %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s |\n", num(s.N), dur(time.Duration(durSpread(rd).med)),
			dur(time.Duration(durSpread(cp).med)), dur(time.Duration(durSpread(en).med)), durSpread(fl).durRange(), durSpread(fs).durRange(),
			durSpread(fi).durRange(), num(reqs), num(sends), durSpread(ti).durRange(), durSpread(tset).durRange(), durSpread(tv).durRange())
	}
	r.f("\n")
}

// startPhases and syncPhases are the columns of the phase tables, in order.
var (
	startPhases = []string{"init/exec", "init/config", "init/kernel", "init/scheduler", "init/servers", "init/other", "source"}
	syncPhases  = []string{"compute", "observe", "plan", "apply/link", "apply/sysctl", "apply/ipvs", "apply/ipset",
		"apply/iptables", "apply/conntrack", "record"}
)

// phases shows where ipvs-proxy's cold start spends its time.
func (r *reportWriter) phases(res *Results) {
	r.f("#### ipvs-proxy's cold start by phase\n\n")
	r.f("Medians over the repetitions, from the first full sync's event. Before the first sync: *init/exec* is from the process's start to its command running (the Go runtime and package initialisation), *config* reading the configuration and setting up logging, *kernel* opening the kernel interfaces (and choosing the iptables backend), *scheduler* checking the scheduler, *servers* the metrics, health and source set-up, *other* up to the proxier waiting for its source, and *source* that wait: reading and decoding the manifests. *gap* is what the phases leave of the total (garbage collection stalls, scheduling).\n\n")
	r.table(res, startPhases, func(s *ScaleResult, o ColdStart, sum time.Duration) time.Duration { return 0 }, "")
	r.table(res, syncPhases, func(s *ScaleResult, o ColdStart, sum time.Duration) time.Duration { return o.Sync - sum }, "gap")
}

// table renders one phase table; rest computes an extra last column.
func (r *reportWriter) table(res *Results, names []string, rest func(*ScaleResult, ColdStart, time.Duration) time.Duration, restName string) {
	r.f("| Services")
	for _, p := range names {
		r.f(" | %s", p)
	}
	if restName != "" {
		r.f(" | %s", restName)
	}
	r.f(" | total |\n|---")
	for range names {
		r.f("|---")
	}
	if restName != "" {
		r.f("|---")
	}
	r.f("|---|\n")
	for _, s := range res.Scale {
		if len(s.Ours) == 0 {
			continue
		}
		by := map[string][]time.Duration{}
		var rests, totals []time.Duration
		for _, o := range s.Ours {
			var sum time.Duration
			for _, p := range names {
				d := phaseOf(o.Phases, p)
				by[p] = append(by[p], d)
				sum += d
			}
			rests, totals = append(rests, rest(s, o, sum)), append(totals, sum)
		}
		r.f("| %s", num(s.N))
		for _, p := range names {
			r.f(" | %s", dur(time.Duration(durSpread(by[p]).med)))
		}
		if restName != "" {
			r.f(" | %s", signedDur(time.Duration(durSpread(rests).med)))
			totals = nil
			for _, o := range s.Ours {
				totals = append(totals, o.Sync)
			}
		}
		r.f(" | %s |\n", dur(time.Duration(durSpread(totals).med)))
	}
	r.f("\n")
}

func phaseOf(ps []syncevent.Phase, name string) time.Duration {
	for _, p := range ps {
		if p.Name == name {
			return p.Took
		}
	}
	return 0
}

// fits fits time = fixed + per object × objects for each side.
func (r *reportWriter) fits(res *Results) {
	type side struct {
		name  string
		times func(*ScaleResult) []time.Duration
	}
	sides := []side{{"floor", floorTimes}, {"floor, its kernel part", floorKernelTimes}, {"tools", toolTimes}, {"ipvs-proxy", oursTimes}}
	r.f("#### Fixed and per-object cost\n\n")
	r.f("Least-squares lines through every repetition at 1,000 Services and more: time = fixed + per object × objects, where objects are the virtual servers, real servers, set members and addresses (%s per Service in this workload).\n\n",
		objectsPerService(res))
	r.f("| Side | fixed | per object | per Service | R² | points |\n|---|---|---|---|---|---|\n")
	for _, sd := range sides {
		var xs, ys []float64
		perSvc, sizes := 0.0, 0
		for _, s := range res.Scale {
			if s.N < 1000 || len(sd.times(s)) == 0 {
				continue
			}
			perSvc, sizes = float64(s.objects())/float64(s.N), sizes+1
			for _, t := range sd.times(s) {
				xs, ys = append(xs, float64(s.objects())), append(ys, float64(t))
			}
		}
		if sizes < 2 {
			continue // a line needs two sizes
		}
		f := fitLine(xs, ys)
		r.f("| %s | %s | %s | %s | %.3f | %d |\n", sd.name, signedDur(time.Duration(f.fixed)), dur(time.Duration(f.perUnit)),
			dur(time.Duration(f.perUnit*perSvc)), f.r2, f.points)
	}
	r.f("\n")
}

func objectsPerService(res *Results) string {
	for _, s := range res.Scale {
		if s.N > 0 {
			return trimFloat(float64(s.objects()) / float64(s.N))
		}
	}
	return "–"
}
