package main

import (
	"encoding/json"
	"fmt"
	"log"
	"path/filepath"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/syncevent"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/workload"
)

// proxyConfig is the daemons' KubeProxyConfiguration: conntrack.maxPerCore 0
// because nf_conntrack_max is read-only outside the root namespace.
const proxyConfig = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
conntrack:
  maxPerCore: 0
`

// ColdStart is one start of ipvs-proxy on an empty namespace.
type ColdStart struct {
	// Time is from starting the process to the end of its first full sync
	// (the sync event's time); Sync is that sync's own duration, Phases its
	// phases ("source" is the wait for the manifests to be read).
	Time, Sync time.Duration
	Phases     []syncevent.Phase
	// Init is from starting the process to the proxier waiting for the
	// source: the Go runtime, the config, opening the kernel interfaces.
	Init                  time.Duration
	Ops, Messages, Failed int
	// CPU is the daemon's user and system time until the sync's end.
	CPU     framework.CPUTimes
	PeakRSS int64
}

// FloorSample is one run of the floor loader.
type FloorSample struct {
	FloorRun
	// Wall is the loader process from start to exit; CPU its CPU times.
	Wall time.Duration
	CPU  framework.CPUTimes
}

// ScaleResult is everything measured at one N with manifests.
type ScaleResult struct {
	N                                               int
	VirtualServers, RealServers, Members, Addresses int
	ToolLines                                       int
	Floor                                           []FloorSample
	Tools                                           []ToolsRun
	Ours                                            []ColdStart
	// Changes and Resyncs are measured on the last cold start's daemon.
	Changes []Change
	Resyncs []Resync
	// Counted is what the netlink monitor saw (see counted.go).
	Counted *Counted `json:",omitempty"`
	// PeakRSS is the last daemon's over its whole run.
	PeakRSS   int64
	SyncEvery time.Duration
}

// scaleOptions say what runs at one N besides the cold starts.
type scaleOptions struct {
	rounds, countRounds int
	counted             bool
}

// runScale measures one N: cold starts of the floor, the tools and
// ipvs-proxy, interleaved, each in a fresh namespace; then changes and idle
// resyncs against the last ipvs-proxy.
func (g *guest) runScale(n, reps int, o scaleOptions) (*ScaleResult, error) {
	dir := filepath.Join(g.work, fmt.Sprint(n))
	w, err := writeManifests(filepath.Join(dir, "manifests"), n)
	if err != nil {
		return nil, err
	}
	in, err := planInputs(g.proxyBin, w, dir)
	if err != nil {
		return nil, err
	}
	res := &ScaleResult{N: n, VirtualServers: in.VirtualServers, RealServers: in.RealServers, Members: in.Members,
		Addresses: in.Addresses, ToolLines: in.IPVSLines + in.IPSetLines + in.IPLines, SyncEvery: syncEvery(n)}
	log.Printf("N=%d: %d virtual servers, %d real servers, %d set members, %d addresses", n,
		in.VirtualServers, in.RealServers, in.Members, in.Addresses)
	var last *daemon
	for r := range reps {
		tag := fmt.Sprintf("%d-%d", n, r)
		settle(2 * time.Minute)
		fl, err := g.floor(w, in, "floor-"+tag)
		if err != nil {
			return res, fmt.Errorf("floor: %w", err)
		}
		res.Floor = append(res.Floor, fl)
		log.Printf("N=%d floor #%d: %s (link %s, sets %s, IPVS %s; process %s)", n, r, fl.Kernel, fl.Link, fl.Sets, fl.IPVS, fl.Wall)

		settle(2 * time.Minute)
		t, err := loadWithTools(in, "tools-"+tag)
		if err != nil {
			return res, fmt.Errorf("tools: %w", err)
		}
		res.Tools = append(res.Tools, t)
		log.Printf("N=%d tools #%d: %s (ip %s, ipset %s, ipvsadm %s)", n, r, t.Total, t.IP, t.IPSet, t.IPVSADM)

		settle(2 * time.Minute)
		d, cs, err := g.coldStart(w, "ours-"+tag, res.SyncEvery, nil)
		if err != nil {
			return res, err
		}
		res.Ours = append(res.Ours, cs)
		log.Printf("N=%d ipvs-proxy #%d: %s (sync %s, %d ops, %d messages, CPU %s, peak RSS %d MiB)", n, r, cs.Time, cs.Sync,
			cs.Ops, cs.Messages, cs.CPU.Total(), cs.PeakRSS>>20)
		if err := checkCounts(d.ns, d.proc.PID(), in); err != nil {
			d.stop()
			return res, err
		}
		if r < reps-1 {
			d.stop()
			continue
		}
		last = d
	}
	if last == nil {
		return res, nil
	}
	defer last.stop()
	if err := g.afterColdStart(last, w, res, o); err != nil {
		return res, err
	}
	res.PeakRSS = last.proc.PeakRSS()
	if o.counted {
		last.stop()
		settle(2 * time.Minute)
		if res.Counted, err = g.countedRun(w, in, res, o.countRounds); err != nil {
			return res, fmt.Errorf("counted run: %w", err)
		}
	}
	return res, nil
}

// afterColdStart runs the changes and idle resyncs on a daemon.
func (g *guest) afterColdStart(d *daemon, w *manifests, res *ScaleResult, o scaleOptions) error {
	if o.rounds > 0 {
		if err := g.changes(d, w, o.rounds, res, nil); err != nil {
			return err
		}
	}
	for range resyncSamples {
		rs, err := idleResync(d, res.SyncEvery, nil)
		if err != nil {
			return err
		}
		res.Resyncs = append(res.Resyncs, rs)
		log.Printf("N=%d idle resync: %s, %d ops, %d messages", res.N, rs.Took, rs.Ops, rs.Messages)
	}
	return nil
}

// resyncSamples is how many idle periodic full syncs are timed per N.
const resyncSamples = 2

// syncEvery is ipvs-proxy's --ipvs-sync-period in the benchmark: a full
// sync (seconds at 10,000 Services under emulation) and a change's window
// (changeWindow) fit between two of them, and each idle resync sample waits
// no longer than needed.
func syncEvery(n int) time.Duration {
	switch {
	case n >= 30000:
		return 2 * time.Minute
	case n >= 10000:
		return time.Minute
	}
	return 30 * time.Second
}

// floor runs the floor loader in a fresh namespace and checks the result.
func (g *guest) floor(w *manifests, in *toolInputs, ns string) (FloorSample, error) {
	var s FloorSample
	if _, err := framework.NewNodeNamespace(ns); err != nil {
		return s, err
	}
	defer framework.DeleteNamespace(ns)
	t, err := framework.RunTimed(framework.Command{Bin: g.selfBin, Args: []string{"floor", "-manifests", w.Dir,
		"-node-ip", framework.NodeIP, "-node-name", workload.NodeName}, NetNS: ns}, time.Hour)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal([]byte(t.Output), &s.FloorRun); err != nil {
		return s, fmt.Errorf("floor output %q: %w", t.Output, err)
	}
	s.Wall, s.CPU = t.Wall, t.CPU
	return s, checkCounts(ns, 0, in)
}
