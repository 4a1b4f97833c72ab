package main

import (
	"fmt"
	"log"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"github.com/ipvs-proxy/ipvs-proxy/internal/syncevent"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/workload"
)

// Change is one change to the manifests and the sync that applied it.
type Change struct {
	Kind string
	// SinceChange is the daemon's: from the source delivering the change to
	// the last kernel ack. Total is from writing the file to the end of the
	// sync, the source's poll and its reading the file included.
	SinceChange, Total time.Duration
	// Sync is the applying syncs' own time, Phases those of the last one.
	Sync          time.Duration
	Phases        []syncevent.Phase
	Ops, Messages int
	WantOps       int
	// Syncs is the number of syncs that applied it.
	Syncs int
	// Collided says a periodic full sync applied it (kept out of the
	// statistics and shown; the benchmark avoids it by waiting).
	Collided bool
	// DrainMessages are the drain check's, deleting a removed endpoint's
	// real server after the change.
	DrainMessages int `json:",omitempty"`
	// Counted is what the netlink monitor saw, when it ran.
	Counted Counts `json:",omitempty"`
}

// changeStep is one kind of change: what to do and how the kernel shows it.
type changeStep struct {
	kind    string
	wantOps int
	key     state.VSKey
	do      func() error
	check   func(map[state.RSKey]state.RealServer) string
}

// changeSteps are round k's four changes, made by the manifest edits of w.
func changeSteps(w *manifests, k int) []changeStep {
	targetKey := state.VSKey{Proto: state.TCP, Addr: workload.ServiceSpec(0).ClusterIP, Port: 80}
	extraRS := state.RSKey{Addr: workload.ExtraEndpoint(0), Port: 8080}
	added := workload.ServiceSpec(workload.ExtraBase + k*10)
	addedKey := state.VSKey{Proto: state.TCP, Addr: added.ClusterIP, Port: 80}
	return []changeStep{
		{"endpoint added", 1, targetKey, func() error { return w.setExtraEndpoint(0, true) }, func(m map[state.RSKey]state.RealServer) string {
			if rs, ok := m[extraRS]; !ok || rs.Weight != 1 {
				return "the new real server is not there with weight 1"
			}
			return ""
		}},
		// the weight goes to 0 at once; the drain check deletes it after
		{"endpoint removed", 1, targetKey, func() error { return w.setExtraEndpoint(0, false) }, func(m map[state.RSKey]state.RealServer) string {
			if rs, ok := m[extraRS]; ok && rs.Weight != 0 {
				return fmt.Sprintf("the removed real server still has weight %d", rs.Weight)
			}
			return ""
		}},
		// address, virtual server, 10 real servers, KUBE-CLUSTER-IP and KUBE-IPVS-IPS members
		{"Service added", 14, addedKey, func() error { return w.addService(k) }, func(m map[state.RSKey]state.RealServer) string {
			if len(m) != workload.EndpointsPer {
				return fmt.Sprintf("the new virtual server has %d real servers", len(m))
			}
			return ""
		}},
		// virtual server, address, two set members
		{"Service deleted", 4, addedKey, func() error { return w.deleteService(k) }, func(m map[state.RSKey]state.RealServer) string {
			if len(m) != 0 {
				return fmt.Sprintf("the deleted virtual server still has %d real servers", len(m))
			}
			return ""
		}},
	}
}

// changes makes rounds of the four changes, one at a time on an idle
// daemon, each timed by the syncs that applied it and checked in the
// kernel. A change the kernel never shows fails the run. With mon set, the
// netlink messages of each change are counted from outside.
func (g *guest) changes(d *daemon, w *manifests, rounds int, res *ScaleResult, mon *monitor) error {
	v := ipvs.New(ipvs.Config{NetNSPath: (&framework.Namespace{Name: d.ns}).Path()})
	if err := v.Open(); err != nil {
		return err
	}
	defer v.Close()
	for k := range rounds {
		for _, st := range changeSteps(w, k) {
			c, err := g.oneChange(d, v, st, mon)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", k, st.kind, err)
			}
			res.Changes = append(res.Changes, c)
			log.Printf("N=%d %s: sinceChange %s, total %s, %d ops, %d messages in %d syncs%s", res.N, c.Kind, c.SinceChange,
				c.Total, c.Ops, c.Messages, c.Syncs, map[bool]string{true: " (applied by a periodic full sync)", false: ""}[c.Collided])
		}
	}
	return nil
}

// changeWindow is the time a change needs to become visible with room to
// spare (the source polls the manifests every second): no periodic full
// sync may start within it.
const changeWindow = 10 * time.Second

// oneChange makes one change on an idle daemon and waits until the kernel
// shows it (and, for a removed endpoint, until the drain check deleted it).
func (g *guest) oneChange(d *daemon, v *ipvs.IPVS, st changeStep, mon *monitor) (Change, error) {
	settle(30 * time.Second)
	if err := d.quietFor(changeWindow); err != nil {
		return Change{}, err
	}
	d.drain()
	var before Counts
	if mon != nil {
		before = mon.Counts()
	}
	written := time.Now()
	if err := st.do(); err != nil {
		return Change{}, err
	}
	c, err := awaitChange(d, v, st, written)
	if err != nil {
		return c, err
	}
	if st.kind == "endpoint removed" {
		s, err := d.drainedSince(written, time.Minute)
		if err != nil {
			return c, fmt.Errorf("the drained real server was not deleted: %w", err)
		}
		c.DrainMessages = s.Messages
	}
	if mon != nil {
		c.Counted = mon.Counts().Sub(before)
	}
	return c, nil
}

// awaitChange follows the syncs after a change until the kernel shows it:
// a new Service's EndpointSlice may come one sync after the Service.
func awaitChange(d *daemon, v *ipvs.IPVS, st changeStep, written time.Time) (Change, error) {
	c := Change{Kind: st.kind, WantOps: st.wantOps}
	var first, last framework.Sync
	add := func(s framework.Sync) {
		if c.Syncs == 0 {
			first = s
		}
		last = s
		c.Syncs++
		c.Ops += s.Ops
		c.Messages += s.Messages
		c.Sync += s.Took()
		c.Collided = c.Collided || s.Type == syncevent.Full
	}
	deadline := written.Add(5 * time.Minute)
	for {
		s, err := d.next(time.Until(deadline), framework.Wrote)
		if err != nil {
			return c, fmt.Errorf("the kernel never showed it: %w", err)
		}
		add(s)
		checked := time.Now()
		dests, err := v.DumpDestinations([]state.VSKey{st.key})
		if err != nil {
			return c, err
		}
		problem := st.check(dests[st.key])
		if problem == "" {
			// Syncs that ended before the check are part of what it saw.
			for {
				s, ok := d.take(framework.Wrote)
				if !ok || s.End.After(checked) {
					break
				}
				add(s)
			}
			break
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("the kernel never showed it: %s", problem)
		}
	}
	c.SinceChange = last.End.Sub(first.End) + first.SinceChange
	c.Total = last.End.Sub(written)
	c.Phases = last.Phases
	return c, nil
}

// Resync is a periodic full sync with nothing to change.
type Resync struct {
	Took          time.Duration
	Phases        []syncevent.Phase
	Ops, Messages int
	CPU           framework.CPUTimes
	// Counted is what the netlink monitor saw, when it ran.
	Counted Counts `json:",omitempty"`
}

// idleResync waits for the daemon's next periodic full sync.
func idleResync(d *daemon, every time.Duration, mon *monitor) (Resync, error) {
	d.drain()
	var before Counts
	if mon != nil {
		before = mon.Counts()
	}
	cpu := sampleCPU(d.proc)
	s, err := d.next(every+10*time.Minute, framework.IsFull)
	time.Sleep(2 * cpuSampleEvery)
	cpu.stop()
	if err != nil {
		return Resync{}, err
	}
	r := Resync{Took: s.Took(), Phases: s.Phases, Ops: s.Ops, Messages: s.Messages, CPU: cpu.between(s.Start, s.End)}
	if mon != nil {
		r.Counted = mon.Counts().Sub(before)
	}
	return r, nil
}
