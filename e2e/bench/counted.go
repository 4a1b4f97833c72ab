package main

import (
	"fmt"
	"log"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/workload"
)

// Counted is a run of ipvs-proxy under the netlink monitor (untimed: the
// capture slows the kernel): a cold start, rounds of changes and an idle
// resync, each with the requests seen from outside beside the daemon's
// own count of its kernel messages.
type Counted struct {
	// ColdStart is what the monitor saw until the first full sync ended;
	// Messages and Ops are that sync's own counts.
	ColdStart     Counts
	Messages, Ops int
	Changes       []Change
	Resync        *Resync `json:",omitempty"`
}

// countedRun starts ipvs-proxy in a fresh namespace that has a monitor.
func (g *guest) countedRun(w *manifests, in *toolInputs, res *ScaleResult, rounds int) (*Counted, error) {
	ns := fmt.Sprintf("counted-%d", res.N)
	if _, err := framework.NewNodeNamespace(ns); err != nil {
		return nil, err
	}
	defer framework.DeleteNamespace(ns)
	mon, err := startMonitor(ns)
	if err != nil {
		return nil, err
	}
	defer mon.stop()
	d, err := g.startDaemon(ns, "ipvs-proxy-"+ns, res.SyncEvery, framework.Options{ManifestDir: w.Dir, NodeName: workload.NodeName,
		ConfigFile: g.configPath})
	if err != nil {
		return nil, err
	}
	defer d.stop()
	s, err := d.next(time.Hour, framework.IsFull)
	if err != nil {
		return nil, err
	}
	c := &Counted{ColdStart: mon.Counts(), Messages: s.Messages, Ops: s.Ops}
	log.Printf("N=%d counted cold start: the daemon counted %d messages, the monitor saw %s", res.N, s.Messages, c.ColdStart)
	if err := checkCounts(ns, d.proc.PID(), in); err != nil {
		return c, err
	}
	if rounds > 0 {
		counted := &ScaleResult{N: res.N}
		if err := g.changes(d, w, rounds, counted, mon); err != nil {
			return c, err
		}
		c.Changes = counted.Changes
	}
	r, err := idleResync(d, res.SyncEvery, mon)
	if err != nil {
		return c, err
	}
	c.Resync = &r
	log.Printf("N=%d counted idle resync: %d ops, the monitor saw %s", res.N, r.Ops, r.Counted)
	return c, nil
}
