package main

import (
	"fmt"
	"strings"
	"time"
)

// The kube-proxy and datapath sections of the report.

func apiVisible(r *APIRun, kind string) []time.Duration {
	var out []time.Duration
	for _, c := range r.Changes {
		if c.Kind == kind {
			out = append(out, c.Visible)
		}
	}
	return out
}

func (r *reportWriter) api(res *Results) {
	if len(res.API) == 0 {
		return
	}
	r.f("#### Against kube-proxy v1.34.4 (ipvs mode), through the API server\n\n")
	r.f("The objects are created through the API server on the host before each daemon starts. Each daemon runs alone, in a fresh network namespace with the same node address, and both read the same KubeProxyConfiguration file (the same `ipvs.syncPeriod`, `minSyncPeriod: 0s`, kube-proxy's default verbosity). ")
	r.f("Each change is made on an idle daemon: the guest's CPUs idle and no periodic sync due soon (40 s at 1,000 Services, 3 minutes from 5,000; kube-proxy's next periodic sync comes a sync period after its last sync of any kind, read from its `kubeproxy_sync_proxy_rules_last_timestamp_seconds`). ")
	r.f("*Visible* is from the API call to the kernel showing the change (one destination dump polled every 20 ms). The first full sync of kube-proxy is read from that metric, ipvs-proxy's from its sync events; an idle resync's time is each daemon's own measure (kube-proxy's `sync_proxy_rules_duration_seconds`). Peak RSS and CPU are from each process's start to the end of its idle resync, the same point for both.\n\n")
	for _, a := range res.API {
		ours, kp := a.Ours, a.KubeProxy
		if ours == nil {
			continue
		}
		rounds := len(apiVisible(ours, "endpoint added"))
		r.f("%s Services (created in %s; sync period %s; %d rounds of each change):\n\n", num(a.N), dur(a.Create), a.SyncPeriod, rounds)
		r.f("| | ipvs-proxy | kube-proxy | kube-proxy / ipvs-proxy |\n|---|---|---|---|\n")
		row := func(name string, o, k time.Duration, oText, kText string) {
			rat := "–"
			if o > 0 && k > 0 {
				rat = fmt.Sprintf("%.1f×", float64(k)/float64(o))
			}
			r.f("| %s | %s | %s | %s |\n", name, oText, kText, rat)
		}
		d := func(run *APIRun, get func(*APIRun) time.Duration) time.Duration {
			if run == nil || !run.Finished {
				return 0
			}
			return get(run)
		}
		txt := func(run *APIRun, v time.Duration) string {
			switch {
			case run == nil:
				return "–"
			case !run.Finished:
				return fmt.Sprintf("not finished within %s", dur(run.Cap))
			}
			return dur(v)
		}
		simple := func(name string, get func(*APIRun) time.Duration) {
			o, k := d(ours, get), d(kp, get)
			row(name, o, k, txt(ours, o), txt(kp, k))
		}
		simple("first full sync done", func(x *APIRun) time.Duration { return x.ColdStart })
		simple("… CPU until then (user + system)", func(x *APIRun) time.Duration { return x.ColdStartCPU.Total() })
		simple("all virtual and real servers in the kernel", func(x *APIRun) time.Duration { return x.AllInKernel })
		for _, kind := range kinds(ours.Changes, func(c APIChange) string { return c.Kind }) {
			o := durSpread(apiVisible(ours, kind))
			var k spread
			kText := txt(kp, 0)
			if kp != nil && kp.Finished {
				k = durSpread(apiVisible(kp, kind))
				kText = k.durRange()
			}
			row(kind+", visible", time.Duration(o.med), time.Duration(k.med), o.durRange(), kText)
		}
		simple("idle resync", func(x *APIRun) time.Duration { return x.IdleResync })
		simple("… CPU meanwhile", func(x *APIRun) time.Duration { return x.IdleResyncCPU.Total() })
		simple("CPU from the start to the end of the idle resync", func(x *APIRun) time.Duration { return x.CPU.Total() })
		oRSS, kRSS := "–", "–"
		if ours.PeakRSS > 0 {
			oRSS = mb(ours.PeakRSS)
		}
		if kp != nil && kp.PeakRSS > 0 {
			kRSS = mb(kp.PeakRSS)
		}
		r.f("| peak RSS | %s | %s | |\n\n", oRSS, kRSS)
		r.f("Kernel counts were polled every %s during the cold starts (%s of reads for ipvs-proxy", ours.PollEvery, dur(ours.PollCost))
		if kp != nil {
			r.f(", %s for kube-proxy", dur(kp.PollCost))
		}
		r.f(").\n\n")
		r.stateDiff(a)
	}
}

// stateDiff shows how the two daemons' kernel states differ.
func (r *reportWriter) stateDiff(a *APIResult) {
	if len(a.Diff) == 0 {
		return
	}
	r.f("The two kernel states after the same inputs (the cold start, every change, the idle resync), line by line as the tools print them (set headers without their sizes, rules without counters):\n\n")
	r.f("| Part | in both | only ipvs-proxy's | only kube-proxy's | examples, ipvs-proxy's / kube-proxy's |\n|---|---|---|---|---|\n")
	for _, d := range a.Diff {
		ex := strings.Join(append(quote(d.OursExamples, 3), "/"), " ")
		ex += " " + strings.Join(quote(d.KubeProxyExamples, 3), " ")
		if d.OnlyOurs == 0 && d.OnlyKubeProxy == 0 {
			ex = "identical"
		}
		r.f("| %s | %s | %s | %s | %s |\n", d.Part, num(d.Same), num(d.OnlyOurs), num(d.OnlyKubeProxy), strings.ReplaceAll(ex, "|", "\\|"))
	}
	r.f("\n")
}

func quote(lines []string, n int) []string {
	var out []string
	for i, l := range lines {
		if i == n {
			break
		}
		out = append(out, "`"+l+"`")
	}
	return out
}

// datapathNoise is the spread of the direct baselines relative to their
// median: when a VIP's shortfall is smaller than that, the emulator cannot
// tell it from noise.
func datapathNoise(ds ...[]float64) float64 {
	worst := 0.0
	for _, d := range ds {
		s := spreadOf(d)
		if s.med > 0 {
			worst = max(worst, (s.hi-s.lo)/s.med)
		}
	}
	return worst
}

func (r *reportWriter) datapath(res *Results) {
	d := res.Datapath
	if d == nil || len(d.KeepAliveDirect) == 0 {
		return
	}
	r.f("#### Datapath: requests/second through a VIP against direct to the backend\n\n")
	r.f("One backend (its own process, in its own network namespace behind a veth) answering one line per request; the client is another process in the root namespace with %d workers; %d trials of %s per case, each comparison interleaved with its own direct baseline. Medians (min–max).\n\n",
		d.Workers, len(d.KeepAliveDirect), d.Trial)
	r.f("\"IPVS alone\" is the same virtual server made by hand (`ipvsadm -A`, `-a ... -m`, the VIP on a dummy link) after ipvs-proxy's cleanup and with the sysctls back at the kernel's defaults (`net.ipv4.vs.conntrack=0`): what IPVS's NAT costs without the rules ipvs-proxy adds.\n\n")
	r.f("| | direct | through the VIP | VIP / direct |\n|---|---|---|---|\n")
	row := func(name string, direct, vip []float64) {
		ds, vs := spreadOf(direct), spreadOf(vip)
		if ds.med == 0 {
			return
		}
		r.f("| %s | %.0f (%.0f–%.0f) | %.0f (%.0f–%.0f) | %.2f× |\n", name, ds.med, ds.lo, ds.hi, vs.med, vs.lo, vs.hi, vs.med/ds.med)
	}
	row("ipvs-proxy, keep-alive connections", d.KeepAliveDirect, d.KeepAliveVIP)
	row("ipvs-proxy, a new connection per request", d.NewConnDirect, d.NewConnVIP)
	row("IPVS alone, keep-alive connections", d.KeepAlivePlainDirect, d.KeepAlivePlain)
	row("IPVS alone, a new connection per request", d.NewConnPlainDirect, d.NewConnPlain)
	noise := datapathNoise(d.KeepAliveDirect, d.NewConnDirect, d.KeepAlivePlainDirect, d.NewConnPlainDirect)
	r.f("\nThe direct baselines alone vary by up to %.0f%% of their median between trials of one phase.\n\n", noise*100)
}
