package main

import (
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/syncevent"
)

// Cold start sections of the report.

func floorTimes(s *ScaleResult) []time.Duration {
	var out []time.Duration
	for _, f := range s.Floor {
		out = append(out, f.Kernel)
	}
	return out
}

func toolTimes(s *ScaleResult) []time.Duration {
	var out []time.Duration
	for _, t := range s.Tools {
		out = append(out, t.Total)
	}
	return out
}

func oursTimes(s *ScaleResult) []time.Duration {
	var out []time.Duration
	for _, o := range s.Ours {
		out = append(out, o.Time)
	}
	return out
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
	r.f("**Floor**: the floor loader's clocked part (its requests encoded before the clock; batched as netlink allows). ")
	r.f("**Tools**: `ip -batch`, `ipset restore`, `ipvsadm -R`, wall times summed. ")
	r.f("**ipvs-proxy**: from starting the process to the end of its first full sync (its sync event), reading the manifests, the iptables rules and the sysctls included, which neither the floor nor the tools do.\n\n")
	r.f("| Services | virtual / real servers | set members / addresses | floor | tools | ipvs-proxy | ipvs-proxy / floor | ipvs-proxy / tools | ipvs-proxy's kernel messages | tools' requests | peak RSS |\n")
	r.f("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range res.Scale {
		var rss []time.Duration
		msgs := 0
		for _, o := range s.Ours {
			rss, msgs = append(rss, time.Duration(o.PeakRSS)), o.Messages
		}
		r.f("| %s | %s / %s | %s / %s | %s | %s | %s | %.2f× | %.2f× | %s | %s | %s |\n", num(s.N), num(s.VirtualServers),
			num(s.RealServers), num(s.Members), num(s.Addresses), durSpread(floorTimes(s)).durRange(),
			durSpread(toolTimes(s)).durRange(), durSpread(oursTimes(s)).durRange(), ratio(oursTimes(s), floorTimes(s)),
			ratio(oursTimes(s), toolTimes(s)), num(msgs), num(s.ToolLines), mb(int64(durSpread(rss).med)))
	}
	r.f("\nCPU time (user + system, from /proc: the process and the children it waited for), medians:\n\n")
	r.f("| Services | floor loader process (wall) | floor: user / system | tools: user / system | ipvs-proxy: user / system | ipvs-proxy's CPU / wall |\n|---|---|---|---|---|---|\n")
	for _, s := range res.Scale {
		var fl, tl, ol []framework.CPUTimes
		var walls []time.Duration
		for _, f := range s.Floor {
			fl, walls = append(fl, f.CPU), append(walls, f.Wall)
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
		r.f("| %s | %s | %s / %s | %s / %s | %s / %s | %.0f%% |\n", num(s.N), durSpread(walls).durRange(), dur(time.Duration(fu.med)),
			dur(time.Duration(fs.med)), dur(time.Duration(tu.med)), dur(time.Duration(ts.med)), dur(time.Duration(ou.med)),
			dur(time.Duration(os.med)), share*100)
	}
	r.f("\nThe floor and the tools by part, medians:\n\n")
	r.f("| Services | floor: link and addresses | floor: sets | floor: IPVS | floor requests / sendmsgs | ip -batch | ipset restore | ipvsadm -R |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range res.Scale {
		var fl, fs, fi, ti, tset, tv []time.Duration
		reqs, sends := 0, 0
		for _, f := range s.Floor {
			fl, fs, fi = append(fl, f.Link), append(fs, f.Sets), append(fi, f.IPVS)
			reqs, sends = f.Requests, f.Sendmsgs
		}
		for _, t := range s.Tools {
			ti, tset, tv = append(ti, t.IP), append(tset, t.IPSet), append(tv, t.IPVSADM)
		}
		r.f("| %s | %s | %s | %s | %s / %s | %s | %s | %s |\n", num(s.N), durSpread(fl).durRange(), durSpread(fs).durRange(),
			durSpread(fi).durRange(), num(reqs), num(sends), durSpread(ti).durRange(), durSpread(tset).durRange(), durSpread(tv).durRange())
	}
	r.f("\n")
}

// coldPhases are the columns of the phase table, in order.
var coldPhases = []string{"source", "compute", "observe", "plan", "apply/link", "apply/sysctl", "apply/ipvs", "apply/ipset",
	"apply/iptables", "record"}

// phases shows where ipvs-proxy's cold start spends its time.
func (r *reportWriter) phases(res *Results) {
	r.f("#### ipvs-proxy's cold start by phase\n\n")
	r.f("Medians over the repetitions, from the first full sync's event. *init* is from starting the process to the proxier waiting for its source (the Go runtime, the config, opening the kernel interfaces); *source* is that wait: reading and decoding the manifests; then the sync's own phases; *other* is what is left of the total (the gaps between them, garbage collection stalls).\n\n")
	r.f("| Services | init")
	for _, p := range coldPhases {
		r.f(" | %s", p)
	}
	r.f(" | other | total |\n|---|---")
	for range coldPhases {
		r.f("|---")
	}
	r.f("|---|---|\n")
	for _, s := range res.Scale {
		if len(s.Ours) == 0 {
			continue
		}
		var inits []time.Duration
		by := map[string][]time.Duration{}
		var others []time.Duration
		for _, o := range s.Ours {
			inits = append(inits, o.Init)
			rest := o.Time - o.Init
			for _, p := range coldPhases {
				d := phaseOf(o.Phases, p)
				by[p] = append(by[p], d)
				rest -= d
			}
			others = append(others, rest)
		}
		r.f("| %s | %s", num(s.N), dur(time.Duration(durSpread(inits).med)))
		for _, p := range coldPhases {
			r.f(" | %s", dur(time.Duration(durSpread(by[p]).med)))
		}
		r.f(" | %s | %s |\n", signedDur(time.Duration(durSpread(others).med)), dur(time.Duration(durSpread(oursTimes(s)).med)))
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
	sides := []side{{"floor", floorTimes}, {"tools", toolTimes}, {"ipvs-proxy", oursTimes}}
	r.f("#### Fixed and per-object cost\n\n")
	r.f("Least-squares lines through every repetition at 1,000 Services and more: time = fixed + per object × objects, where objects are the virtual servers, real servers, set members and addresses (%s per Service in this workload).\n\n",
		objectsPerService(res))
	r.f("| Side | fixed | per object | per Service | R² | points |\n|---|---|---|---|---|---|\n")
	for _, sd := range sides {
		var xs, ys []float64
		perSvc := 0.0
		for _, s := range res.Scale {
			if s.N < 1000 {
				continue
			}
			perSvc = float64(s.objects()) / float64(s.N)
			for _, t := range sd.times(s) {
				xs, ys = append(xs, float64(s.objects())), append(ys, float64(t))
			}
		}
		f := fitLine(xs, ys)
		if f.points < 2 {
			continue
		}
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
