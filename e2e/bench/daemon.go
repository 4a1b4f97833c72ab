package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/syncevent"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/workload"
)

// daemon is an ipvs-proxy the benchmark started in a namespace of its own,
// with the framework's process and sync-event reader.
type daemon struct {
	ns    string
	proc  *framework.Process
	syncs *framework.SyncFollower
	// every is its --ipvs-sync-period; lastFull the start of its last full
	// sync the benchmark has read (the period runs from there at the
	// earliest).
	every    time.Duration
	lastFull time.Time
	// lastDrain is the last drain check that deleted something (the
	// benchmark may skip it while waiting for another sync).
	lastDrain framework.Sync
}

// startDaemon starts ipvs-proxy with opts in namespace ns (made by the
// caller), its log and sync events under the logs directory as name.*.
func (g *guest) startDaemon(ns, name string, every time.Duration, opts framework.Options) (*daemon, error) {
	opts.NetNS = ns
	opts.ExtraArgs = append(opts.ExtraArgs, "--ipvs-sync-period", every.String(), "--drain-check-period", "1s")
	events := filepath.Join(g.logs, name+".syncs.jsonl")
	_ = os.Remove(events)
	proc, err := framework.StartProcess(opts.Command(g.proxyBin, filepath.Join(g.logs, name+".log"), events))
	if err != nil {
		return nil, err
	}
	return &daemon{ns: ns, proc: proc, syncs: framework.FollowSyncs(events, 0), every: every}, nil
}

// coldStart starts ipvs-proxy on a fresh namespace ns (with extra arguments)
// and waits for its first full sync.
func (g *guest) coldStart(w *manifests, ns string, every time.Duration, env []string, extra ...string) (*daemon, ColdStart, error) {
	var cs ColdStart
	if _, err := framework.NewNodeNamespace(ns); err != nil {
		return nil, cs, err
	}
	d, err := g.startDaemon(ns, "ipvs-proxy-"+ns, every, framework.Options{ManifestDir: w.Dir, NodeName: workload.NodeName,
		ConfigFile: g.configPath, Env: env, ExtraArgs: extra})
	if err != nil {
		framework.DeleteNamespace(ns)
		return nil, cs, err
	}
	s, err := d.next(time.Hour, framework.IsFull)
	if err == nil && s.Incomplete() {
		err = fmt.Errorf("first full sync incomplete (%d of %d ops failed): %q", s.Failed, s.Ops, s.Errors)
	}
	if err != nil {
		d.stop()
		return nil, cs, err
	}
	cs.CPU, err = d.proc.CPU()
	if err != nil {
		d.stop()
		return nil, cs, err
	}
	cs.Time, cs.Sync, cs.Phases = s.End.Sub(d.proc.Started), s.Took(), s.Phases
	cs.Init = s.Start.Add(-s.Phase("source")).Sub(d.proc.Started)
	cs.Ops, cs.Messages, cs.Failed, cs.PeakRSS = s.Ops, s.Messages, s.Failed, d.proc.PeakRSS()
	return d, cs, nil
}

// next waits for the daemon's next sync for which keep is true.
func (d *daemon) next(timeout time.Duration, keep func(framework.Sync) bool) (framework.Sync, error) {
	s, err := d.syncs.Next(timeout, d.proc, func(s framework.Sync) bool {
		d.note(s)
		return keep == nil || keep(s)
	})
	if err != nil {
		err = fmt.Errorf("ipvs-proxy in %s: %w", d.ns, err)
	}
	return s, err
}

// take returns the next recorded sync for which keep is true, without waiting.
func (d *daemon) take(keep func(framework.Sync) bool) (framework.Sync, bool) {
	s, ok, _ := d.syncs.Take(func(s framework.Sync) bool {
		d.note(s)
		return keep == nil || keep(s)
	})
	return s, ok
}

func (d *daemon) note(s framework.Sync) {
	switch {
	case s.Type == syncevent.Full:
		d.lastFull = s.Start
	case s.Type == syncevent.Drain && s.Ops > 0:
		d.lastDrain = s
	}
}

// drainedSince waits for a drain check that deleted something after t.
func (d *daemon) drainedSince(t time.Time, timeout time.Duration) (framework.Sync, error) {
	if d.lastDrain.End.After(t) {
		return d.lastDrain, nil
	}
	return d.next(timeout, func(s framework.Sync) bool { return s.Type == syncevent.Drain && s.Ops > 0 })
}

// drain drops the syncs recorded so far (noting full ones).
func (d *daemon) drain() {
	for {
		if _, ok := d.take(nil); !ok {
			return
		}
	}
}

// quietFor makes sure no periodic full sync can start within window: if
// one can, it waits for it to finish first. The window is what one change
// needs, not the period: a longer one waits out a whole period per change.
func (d *daemon) quietFor(window time.Duration) error {
	d.drain()
	if d.lastFull.IsZero() || time.Until(d.lastFull.Add(d.every)) > window {
		return nil
	}
	_, err := d.next(d.every+10*time.Minute, framework.IsFull)
	return err
}

// stop stops the daemon and deletes its namespace.
func (d *daemon) stop() {
	_, _ = d.proc.Stop(20 * time.Second)
	framework.DeleteNamespace(d.ns)
}
