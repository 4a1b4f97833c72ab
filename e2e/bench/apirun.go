package main

import (
	"context"
	"fmt"
	"log"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/workload"
)

// APIChange is one change made through the API server.
type APIChange struct {
	Kind string
	// Visible is from the API call to the kernel showing the change (one
	// destination dump polled every 20 ms).
	Visible time.Duration
	// SinceChange and Ops are ipvs-proxy's sync events (zero for kube-proxy).
	SinceChange time.Duration
	Ops         int
}

// APIRun is one daemon (ipvs-proxy or kube-proxy) against the API server.
type APIRun struct {
	Daemon string
	// ColdStart is from starting the process to the end of its first full
	// sync; Finished is false when that did not happen within Cap.
	ColdStart time.Duration
	Finished  bool
	Cap       time.Duration
	// ColdStartCPU is the daemon's (and its children's) CPU until then.
	ColdStartCPU framework.CPUTimes
	// AllInKernel is when the virtual and real server counts first reached
	// their final values (polled every PollEvery from /proc/PID/net/ip_vs,
	// which cost PollCost in all).
	AllInKernel                 time.Duration
	PollEvery, PollCost         time.Duration
	VirtualServers, RealServers int
	Changes                     []APIChange
	// IdleResync is a periodic sync with nothing to change: its duration
	// (the daemon's own measure) and the CPU the daemon used meanwhile
	// (sampled every 100 ms: up to 0.2 s of idle CPU more).
	IdleResync    time.Duration
	IdleResyncCPU framework.CPUTimes
	// PeakRSS and CPU are from the start to the end of the idle resync.
	PeakRSS int64
	CPU     framework.CPUTimes
}

// APIResult is one N against the API server.
type APIResult struct {
	N          int
	Create     time.Duration
	SyncPeriod time.Duration
	Ours       *APIRun `json:",omitempty"`
	KubeProxy  *APIRun `json:",omitempty"`
	// Diff compares the two daemons' kernel states after the same inputs.
	Diff []StateDiff `json:",omitempty"`
}

// apiConfig is both daemons' configuration file: the same sync periods.
const apiConfig = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
hostnameOverride: %s
clientConnection:
  kubeconfig: %s
conntrack:
  maxPerCore: 0
metricsBindAddress: 127.0.0.1:10249
ipvs:
  syncPeriod: %s
  minSyncPeriod: 0s
`

// apiSyncPeriod is both daemons' ipvs.syncPeriod, and apiChangeWindow the
// time a change is given before a periodic sync: a change is made only when
// no periodic sync is due within the window, so that it finds the daemon
// idle (kube-proxy syncs everything for any change: tens of seconds at
// 10,000 Services under emulation).
func apiSyncPeriod(n int) time.Duration {
	if n >= 5000 {
		return 6 * time.Minute
	}
	return 2 * time.Minute
}

func apiChangeWindow(n int) time.Duration {
	if n >= 5000 {
		return 3 * time.Minute
	}
	return 40 * time.Second
}

func (g *guest) runAPI(n, rounds int, kpCap time.Duration) (*APIResult, error) {
	ctx := context.Background()
	c, err := apiClient(g.kubeconfig)
	if err != nil {
		return nil, err
	}
	res := &APIResult{N: n, SyncPeriod: apiSyncPeriod(n)}
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
	cfg := filepath.Join(g.work, fmt.Sprintf("api-%d.yaml", n))
	if err := writeFile(cfg, fmt.Sprintf(apiConfig, workload.NodeName, g.kubeconfig, res.SyncPeriod)); err != nil {
		return res, err
	}
	var states []kernelState
	for _, name := range []string{"ipvs-proxy", "kube-proxy"} {
		settle(3 * time.Minute)
		r, st, err := g.apiDaemon(ctx, c, n, name, cfg, rounds, kpCap, res.SyncPeriod)
		if name == "ipvs-proxy" {
			res.Ours = r
		} else {
			res.KubeProxy = r
		}
		if err != nil {
			return res, fmt.Errorf("%s: %w", name, err)
		}
		states = append(states, st)
	}
	if states[0] != nil && states[1] != nil {
		res.Diff = diffStates(states[0], states[1])
	}
	return res, nil
}

// apiDaemon runs one daemon in a fresh namespace against the API server:
// cold start, changes on an idle daemon, an idle resync, its kernel state.
func (g *guest) apiDaemon(ctx context.Context, c *kubernetes.Clientset, n int, name, cfg string, rounds int, limit, period time.Duration) (*APIRun, kernelState, error) {
	if err := newAPINS(); err != nil {
		return nil, nil, err
	}
	defer framework.DeleteNamespace(apiNS)
	r := &APIRun{Daemon: name, Cap: limit, PollEvery: 2 * time.Second}
	if n >= 5000 {
		r.PollEvery = 15 * time.Second
	}
	d, err := g.startSubject(name, n, cfg, period)
	if err != nil {
		return r, nil, err
	}
	defer d.stop()
	if err := coldStartAPI(d, r); err != nil || !r.Finished {
		return r, nil, err // capped: say so, measure nothing more
	}
	if err := g.apiChanges(ctx, c, d, rounds, apiChangeWindow(n), r); err != nil {
		return r, nil, err
	}
	cpu := sampleCPU(d.process())
	end, took, err := d.idleResync(period + 10*time.Minute)
	time.Sleep(2 * cpuSampleEvery)
	cpu.stop()
	if err != nil {
		return r, nil, err
	}
	total, _ := d.process().CPU()
	r.IdleResync, r.IdleResyncCPU, r.CPU, r.PeakRSS = took, cpu.between(end.Add(-took), end), total, d.process().PeakRSS()
	log.Printf("API N=%d %s: idle resync %s (CPU %s), peak RSS %d MiB, CPU %s", n, name, took, r.IdleResyncCPU.Total(),
		r.PeakRSS>>20, r.CPU.Total())
	st, err := snapshotState(apiNS)
	return r, st, err
}

// coldStartAPI waits for the first full sync, polling the kernel's counts.
func coldStartAPI(d subject, r *APIRun) error {
	type sample struct {
		at     time.Duration
		vs, rs int
	}
	var samples []sample
	p := d.process()
	nextPoll, deadline := p.Started, p.Started.Add(r.Cap)
	for time.Now().Before(deadline) && p.Running() {
		if !time.Now().Before(nextPoll) {
			t0 := time.Now()
			vs, rs, _ := ipvsCounts(p.PID())
			r.PollCost += time.Since(t0)
			samples = append(samples, sample{t0.Sub(p.Started), vs, rs})
			nextPoll = t0.Add(r.PollEvery)
		}
		end, ok, err := d.firstSync()
		if err != nil {
			return err
		}
		if ok {
			r.ColdStart, r.Finished = end.Sub(p.Started), true
			r.ColdStartCPU, _ = p.CPU()
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !p.Running() {
		return fmt.Errorf("%s exited: %w", r.Daemon, p.Err())
	}
	r.VirtualServers, r.RealServers, _ = ipvsCounts(p.PID())
	for _, s := range samples {
		if s.vs == r.VirtualServers && s.rs == r.RealServers {
			r.AllInKernel = s.at
			break
		}
	}
	log.Printf("API %s: first full sync %s (finished %v, CPU %s), all in the kernel by %s, %d virtual, %d real servers",
		r.Daemon, r.ColdStart, r.Finished, r.ColdStartCPU.Total(), r.AllInKernel, r.VirtualServers, r.RealServers)
	return nil
}

// apiChanges makes rounds of the four changes through the API, each on an
// idle daemon, and times each until the kernel shows it.
func (g *guest) apiChanges(ctx context.Context, c *kubernetes.Clientset, d subject, rounds int, window time.Duration, r *APIRun) error {
	v := ipvs.New(ipvs.Config{NetNSPath: (&framework.Namespace{Name: apiNS}).Path()})
	if err := v.Open(); err != nil {
		return err
	}
	defer v.Close()
	targetKey := state.VSKey{Proto: state.TCP, Addr: workload.ServiceSpec(0).ClusterIP, Port: 80}
	extraRS := state.RSKey{Addr: workload.ExtraEndpoint(0), Port: 8080}
	for k := range rounds {
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
			settle(time.Minute)
			if err := d.quietFor(window); err != nil {
				return err
			}
			start := time.Now()
			if err := st.do(); err != nil {
				return err
			}
			ch := APIChange{Kind: st.kind}
			for {
				dests, err := v.DumpDestinations([]state.VSKey{st.key})
				if err == nil && st.shown(dests[st.key]) {
					ch.Visible = time.Since(start)
					break
				}
				if time.Since(start) > 10*time.Minute {
					return fmt.Errorf("round %d, %s: not visible after 10 minutes", k, st.kind)
				}
				time.Sleep(20 * time.Millisecond)
			}
			ch.SinceChange, ch.Ops = d.changeSyncs(start)
			r.Changes = append(r.Changes, ch)
			log.Printf("API %s %s: visible after %s (sinceChange %s, %d ops)", r.Daemon, ch.Kind, ch.Visible, ch.SinceChange, ch.Ops)
		}
	}
	return nil
}
