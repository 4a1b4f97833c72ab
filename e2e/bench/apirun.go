package main

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/workload"
)

// APIChange is one change made through the API server.
type APIChange struct {
	Kind string
	// Visible is from the API call to the kernel showing the change (polled
	// over netlink every 20 ms: one destination dump of one service).
	Visible time.Duration
	// SinceChange and Ops are ipvs-proxy's log fields (zero for kube-proxy).
	SinceChange time.Duration
	Ops         int
	Problem     string `json:",omitempty"`
}

// APIRun is one daemon (ipvs-proxy or kube-proxy) against the API server.
type APIRun struct {
	Daemon string
	// ColdStart is from starting the process to the end of its first full
	// sync; Finished is false when that did not happen within Cap.
	ColdStart time.Duration
	Finished  bool
	Cap       time.Duration
	// AllInKernel is when the virtual and real server counts first reached
	// their final values (polled every PollEvery from /proc/PID/net/ip_vs,
	// which cost PollCost in all).
	AllInKernel                 time.Duration
	PollEvery, PollCost         time.Duration
	VirtualServers, RealServers int
	Changes                     []APIChange
	// IdleResync is the duration of a periodic sync with nothing to change.
	IdleResync time.Duration
	PeakRSS    int64
}

// APIResult is one N against the API server.
type APIResult struct {
	N         int
	Create    time.Duration
	Ours      *APIRun `json:",omitempty"`
	KubeProxy *APIRun `json:",omitempty"`
}

// kubeProxyConfig is kube-proxy's configuration: its flags are ignored
// when a file is given.
const kubeProxyConfig = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
hostnameOverride: %s
clientConnection:
  kubeconfig: %s
conntrack:
  maxPerCore: 0
metricsBindAddress: 127.0.0.1:10249
`

func (g *guest) runAPI(n int, kpCap time.Duration) (*APIResult, error) {
	ctx := context.Background()
	c, err := apiClient(g.kubeconfig)
	if err != nil {
		return nil, err
	}
	res := &APIResult{N: n}
	start := time.Now()
	if err := createObjects(ctx, c, n); err != nil {
		return res, err
	}
	res.Create = time.Since(start)
	log.Printf("API N=%d: created %d Services and slices in %s", n, n, res.Create)
	defer func() {
		if err := deleteObjects(ctx, c, n); err != nil {
			log.Printf("API N=%d: delete objects: %v", n, err)
		}
	}()
	settle(time.Minute)
	ours, err := g.apiDaemon(ctx, c, n, "ipvs-proxy", time.Hour)
	res.Ours = ours
	if err != nil {
		return res, err
	}
	settle(2 * time.Minute)
	kp, err := g.apiDaemon(ctx, c, n, "kube-proxy", kpCap)
	res.KubeProxy = kp
	return res, err
}

// apiDaemon runs one daemon in a fresh namespace against the API server:
// cold start, changes, an idle resync.
func (g *guest) apiDaemon(ctx context.Context, c *kubernetes.Clientset, n int, daemon string, limit time.Duration) (*APIRun, error) {
	ns := "api-" + daemon
	if err := newAPINS(ns); err != nil {
		return nil, err
	}
	defer deleteNS(ns)
	r := &APIRun{Daemon: daemon, Cap: limit, PollEvery: 2 * time.Second}
	if n >= 5000 {
		r.PollEvery = 15 * time.Second
	}
	var p *process
	var err error
	logPath := filepath.Join(g.logs, fmt.Sprintf("%s-api-%d.log", daemon, n))
	if daemon == "kube-proxy" {
		cfg := filepath.Join(g.work, "kube-proxy.yaml")
		if err := writeFile(cfg, fmt.Sprintf(kubeProxyConfig, workload.NodeName, g.kubeconfig)); err != nil {
			return r, err
		}
		p, err = startProcess(ns, logPath, nil, g.kubeProxyBin, "--config", cfg, "--v", "2")
	} else {
		// with --config the file is what counts, as for kube-proxy
		cfg := filepath.Join(g.work, "ipvs-proxy-api.yaml")
		if err := writeFile(cfg, fmt.Sprintf(kubeProxyConfig, workload.NodeName, g.kubeconfig)+"ipvs:\n  syncPeriod: 60s\n"); err != nil {
			return r, err
		}
		p, err = startProcess(ns, logPath, proxyEnv, g.proxyBin, "run", "--config", cfg, "--logging-format", "json")
	}
	if err != nil {
		return r, err
	}
	defer p.Stop()
	m := &kubeProxyMetrics{ns: ns}

	// Cold start: the first full sync, with the kernel's counts polled beside it.
	type sample struct {
		at     time.Duration
		vs, rs int
	}
	var samples []sample
	nextPoll := p.Start
	deadline := p.Start.Add(limit)
	for time.Now().Before(deadline) && p.Running() {
		if !time.Now().Before(nextPoll) {
			t0 := time.Now()
			vs, rs, _ := ipvsCounts(p.PID())
			r.PollCost += time.Since(t0)
			samples = append(samples, sample{t0.Sub(p.Start), vs, rs})
			nextPoll = t0.Add(r.PollEvery)
		}
		if daemon == "kube-proxy" {
			if ts, _, _, ok := m.scrape(); ok && ts > 0 {
				r.ColdStart, r.Finished = time.Unix(0, int64(ts*1e9)).Sub(p.Start), true
				break
			}
			time.Sleep(time.Second)
		} else {
			if s, ok := p.take(func(s syncLine) bool { return s.Type == "full" }); ok {
				r.ColdStart, r.Finished = s.TS.Sub(p.Start), s.Msg == "synced"
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	r.VirtualServers, r.RealServers, _ = ipvsCounts(p.PID())
	for _, s := range samples {
		if s.vs == r.VirtualServers && s.rs == r.RealServers {
			r.AllInKernel = s.at
			break
		}
	}
	r.PeakRSS = vmHWM(p.PID())
	log.Printf("API N=%d %s: first full sync %s (finished %v), all in the kernel by %s, %d virtual, %d real servers",
		n, daemon, r.ColdStart, r.Finished, r.AllInKernel, r.VirtualServers, r.RealServers)
	if !r.Finished {
		return r, nil // capped: say so, measure nothing more
	}

	if err := g.apiChanges(ctx, c, p, ns, daemon, r); err != nil {
		return r, err
	}
	// An idle periodic sync.
	if daemon == "kube-proxy" {
		time.Sleep(5 * time.Second)
		_, count0, sum0, _ := m.scrape()
		for end := time.Now().Add(3 * time.Minute); time.Now().Before(end); time.Sleep(time.Second) {
			if _, count, sum, ok := m.scrape(); ok && count > count0 {
				r.IdleResync = time.Duration((sum - sum0) / (count - count0) * 1e9)
				break
			}
		}
	} else if s, err := p.next(3*time.Minute, func(s syncLine) bool { return s.Type == "full" }); err == nil {
		r.IdleResync = s.Took
	}
	r.PeakRSS = vmHWM(p.PID())
	log.Printf("API N=%d %s: idle resync %s, peak RSS %d MiB", n, daemon, r.IdleResync, r.PeakRSS>>20)
	return r, nil
}

// apiChanges makes the four changes through the API, three rounds, and
// times each until the kernel shows it.
func (g *guest) apiChanges(ctx context.Context, c *kubernetes.Clientset, p *process, ns, daemon string, r *APIRun) error {
	v := ipvs.New(ipvs.Config{NetNSPath: netNS{Name: ns}.Path()})
	if err := v.Open(); err != nil {
		return err
	}
	defer v.Close()
	targetKey := state.VSKey{Proto: state.TCP, Addr: workload.ServiceSpec(0).ClusterIP, Port: 80}
	extraRS := state.RSKey{Addr: workload.ExtraEndpoint(0), Port: 8080}
	for k := range 3 {
		added := workload.ServiceSpec(workload.ExtraBase + k*10)
		addedKey := state.VSKey{Proto: state.TCP, Addr: added.ClusterIP, Port: 80}
		steps := []struct {
			kind  string
			key   state.VSKey
			do    func() error
			shown func(map[state.RSKey]state.RealServer) bool
		}{
			{"endpoint added", targetKey, func() error { return setEndpoints(ctx, c, 0, true) },
				func(m map[state.RSKey]state.RealServer) bool { rs, ok := m[extraRS]; return ok && rs.Weight > 0 }},
			{"endpoint removed", targetKey, func() error { return setEndpoints(ctx, c, 0, false) },
				func(m map[state.RSKey]state.RealServer) bool { rs, ok := m[extraRS]; return !ok || rs.Weight == 0 }},
			{"Service added", addedKey, func() error { return createService(ctx, c, added) },
				func(m map[state.RSKey]state.RealServer) bool { return len(m) == workload.EndpointsPer }},
			{"Service deleted", addedKey, func() error { return deleteService(ctx, c, added) },
				func(m map[state.RSKey]state.RealServer) bool { return len(m) == 0 }},
		}
		for _, st := range steps {
			time.Sleep(time.Second)
			p.drain()
			start := time.Now()
			if err := st.do(); err != nil {
				return err
			}
			ch := APIChange{Kind: st.kind}
			var seen time.Time
			for {
				seen = time.Now()
				dests, err := v.DumpDestinations([]state.VSKey{st.key})
				if err == nil && st.shown(dests[st.key]) {
					ch.Visible = time.Since(start)
					break
				}
				if time.Since(start) > 3*time.Minute {
					ch.Problem = "not visible after 3 minutes"
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if daemon == "ipvs-proxy" {
				// The syncs that ended before the kernel showed the change:
				// a new Service's slice may come one sync after the Service.
				time.Sleep(100 * time.Millisecond)
				var first, last syncLine
				for {
					s, ok := p.take(func(s syncLine) bool { return s.Type != "drain" && s.Ops > 0 })
					if !ok || s.TS.After(seen.Add(10*time.Millisecond)) {
						break
					}
					if ch.Ops == 0 {
						first = s
					}
					last = s
					ch.Ops += s.Ops
				}
				if ch.Ops > 0 {
					ch.SinceChange = last.TS.Sub(first.TS) + first.SinceChange
				}
			}
			r.Changes = append(r.Changes, ch)
			log.Printf("API %s %s: visible after %s (sinceChange %s, %d ops) %s", daemon, ch.Kind, ch.Visible, ch.SinceChange, ch.Ops, ch.Problem)
		}
	}
	return nil
}

// kubeProxyMetrics scrapes kube-proxy's /metrics inside its namespace.
type kubeProxyMetrics struct {
	ns string
}

// scrape returns the time stamp of the end of the last sync (Unix seconds,
// 0 before the first), and the count and sum of sync durations.
func (m *kubeProxyMetrics) scrape() (lastSync, count, sum float64, ok bool) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := inNS(m.ns, func() error {
				var err error
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
	resp, err := client.Get("http://127.0.0.1:10249/metrics")
	if err != nil {
		return 0, 0, 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, value, found := strings.Cut(sc.Text(), " ")
		if !found || strings.HasPrefix(name, "#") {
			continue
		}
		// kube-proxy runs a proxier per family; the IPv6 one never syncs
		// here (no IPv6 endpoints), its metrics are not ours.
		name, labels, _ := strings.Cut(name, "{")
		if strings.Contains(labels, `ip_family="IPv6"`) {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name {
		case "kubeproxy_sync_proxy_rules_last_timestamp_seconds":
			lastSync = f
		case "kubeproxy_sync_proxy_rules_duration_seconds_count":
			count = f
		case "kubeproxy_sync_proxy_rules_duration_seconds_sum":
			sum = f
		}
	}
	return lastSync, count, sum, true
}

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o644) }
