package main

import (
	"fmt"
	"log"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
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

// proxyEnv is added to ipvs-proxy's environment (GODEBUG=gctrace=1 would
// explain outliers, but the runtime's lines land in the middle of the log's).
var proxyEnv []string

// ColdStart is one start of ipvs-proxy on an empty namespace.
type ColdStart struct {
	// Time is from starting the process to the end of its first full sync
	// (the log line's time stamp); Took is that sync's own duration.
	Time, Took            time.Duration
	Ops, Messages, Failed int
	PeakRSS               int64
}

// Change is one change to the manifests and the sync that applied it.
type Change struct {
	Kind string
	// SinceChange is the daemon's: from the source delivering the change to
	// the last kernel ack. Total is from writing the file to the sync's log
	// line, poll period and manifest reading included.
	SinceChange, Total time.Duration
	Ops, Messages      int
	WantOps            int
	// Syncs is the number of syncs that applied it.
	Syncs int
	// Collided says a full sync applied it (excluded from the statistics).
	Collided bool
	// Problem says what the kernel showed if not the change.
	Problem string `json:",omitempty"`
}

// Resync is a periodic full sync with nothing to change.
type Resync struct {
	Took          time.Duration
	Ops, Messages int
}

// ScaleResult is everything measured at one N with manifests.
type ScaleResult struct {
	N                                               int
	VirtualServers, RealServers, Members, Addresses int
	ToolLines                                       int
	Tools                                           []ToolsRun
	Ours                                            []ColdStart
	// Verified is empty when the kernel held exactly the planned counts.
	Verified  string
	Changes   []Change
	Resyncs   []Resync
	PeakRSS   int64
	SyncEvery time.Duration
	// Limited is one more cold start with Go's soft memory limit set
	// (GOMEMLIMIT=MemLimit), at the largest N.
	Limited  *ColdStart `json:",omitempty"`
	MemLimit string     `json:",omitempty"`
}

// memLimit is the soft memory limit of the extra cold start at 10,000
// Services: what a DaemonSet would set to keep the agent under 200 MB.
const memLimit = "150MiB"

// runScale measures one N: cold starts of the tools and of ipvs-proxy
// (interleaved, a fresh namespace each), then changes and idle resyncs
// against the last ipvs-proxy.
func (g *guest) runScale(n, reps, rounds int) (*ScaleResult, error) {
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
	var last *process
	var lastNS string
	for r := range reps {
		settle(time.Minute)
		t, err := loadWithTools(in, fmt.Sprintf("tools-%d-%d", n, r))
		if err != nil {
			return res, err
		}
		log.Printf("N=%d tools #%d: %s (ip %s, ipset %s, ipvsadm %s)", n, r, t.Total, t.IP, t.IPSet, t.IPVSADM)
		res.Tools = append(res.Tools, t)

		settle(time.Minute)
		ns := fmt.Sprintf("ours-%d-%d", n, r)
		p, cs, err := g.coldStart(w, ns, res.SyncEvery, fmt.Sprintf("ipvs-proxy-%d-%d.log", n, r), proxyEnv)
		if err != nil {
			return res, err
		}
		log.Printf("N=%d ipvs-proxy #%d: %s (sync %s, %d ops, %d messages, peak RSS %d MiB)", n, r, cs.Time, cs.Took,
			cs.Ops, cs.Messages, cs.PeakRSS>>20)
		res.Ours = append(res.Ours, cs)
		if r < reps-1 {
			p.Stop()
			deleteNS(ns)
			continue
		}
		last, lastNS = p, ns
	}
	defer deleteNS(lastNS)
	defer last.Stop()
	res.Verified = verifyKernel(last, lastNS, in)
	if rounds > 0 {
		if err := g.changes(w, last, lastNS, rounds, res); err != nil {
			return res, err
		}
	}
	// The next periodic full sync finds nothing to do.
	s, err := last.next(res.SyncEvery+10*time.Minute, func(s syncLine) bool { return s.Type == "full" })
	if err != nil {
		return res, err
	}
	res.Resyncs = append(res.Resyncs, Resync{Took: s.Took, Ops: s.Ops, Messages: s.Messages})
	log.Printf("N=%d idle resync: %s, %d ops, %d messages", n, s.Took, s.Ops, s.Messages)
	res.PeakRSS = vmHWM(last.PID())
	if n >= 10000 {
		last.Stop()
		settle(time.Minute)
		ns := fmt.Sprintf("ours-%d-limited", n)
		p, cs, err := g.coldStart(w, ns, res.SyncEvery, fmt.Sprintf("ipvs-proxy-%d-limited.log", n),
			append(slices.Clone(proxyEnv), "GOMEMLIMIT="+memLimit))
		if err != nil {
			return res, err
		}
		p.Stop()
		deleteNS(ns)
		res.Limited, res.MemLimit = &cs, memLimit
		log.Printf("N=%d ipvs-proxy with GOMEMLIMIT=%s: %s, peak RSS %d MiB", n, memLimit, cs.Time, cs.PeakRSS>>20)
	}
	return res, nil
}

// syncEvery is ipvs-proxy's --ipvs-sync-period in the benchmark: long enough
// that the change tests finish before the first periodic full sync.
func syncEvery(n int) time.Duration {
	if n >= 10000 {
		return 90 * time.Second
	}
	return 45 * time.Second
}

// coldStart starts ipvs-proxy on an empty namespace and waits for its first
// full sync.
func (g *guest) coldStart(w *manifests, ns string, every time.Duration, logName string, env []string, extra ...string) (*process, ColdStart, error) {
	var cs ColdStart
	if _, err := newNodeNS(ns); err != nil {
		return nil, cs, err
	}
	p, err := startProcess(ns, filepath.Join(g.logs, logName), env, g.proxyBin, append([]string{"run", "--manifests", w.Dir,
		"--node-name", workload.NodeName, "--config", g.configPath, "--logging-format", "json",
		"--ipvs-sync-period", every.String()}, extra...)...)
	if err != nil {
		return nil, cs, err
	}
	s, err := p.next(20*time.Minute, func(s syncLine) bool { return s.Type == "full" })
	if err != nil {
		p.Stop()
		return nil, cs, err
	}
	if s.Msg != "synced" {
		p.Stop()
		return nil, cs, fmt.Errorf("first full sync incomplete (%d of %d ops failed); log %s", s.Failed, s.Ops, p.LogPath)
	}
	cs = ColdStart{Time: s.TS.Sub(p.Start), Took: s.Took, Ops: s.Ops, Messages: s.Messages, Failed: s.Failed,
		PeakRSS: vmHWM(p.PID())}
	return p, cs, nil
}

// verifyKernel compares what the namespace holds with the plan's counts.
func verifyKernel(p *process, ns string, in *toolInputs) string {
	var problems []string
	vs, rs, err := ipvsCounts(p.PID())
	if err != nil {
		problems = append(problems, err.Error())
	} else if vs != in.VirtualServers || rs != in.RealServers {
		problems = append(problems, fmt.Sprintf("%d virtual and %d real servers, planned %d and %d", vs, rs, in.VirtualServers, in.RealServers))
	}
	saved, err := run(ns, ipsetBin, "save")
	if err != nil {
		problems = append(problems, err.Error())
	} else if m := strings.Count(saved, "\nadd "); m != in.Members {
		problems = append(problems, fmt.Sprintf("%d set members, planned %d", m, in.Members))
	}
	addrs, err := run(ns, ipBin, "-o", "addr", "show", "dev", state.LinkName)
	if err != nil {
		problems = append(problems, err.Error())
	} else if a := len(nonEmptyLines(addrs)); a != in.Addresses {
		problems = append(problems, fmt.Sprintf("%d addresses on %s, planned %d", a, state.LinkName, in.Addresses))
	}
	return strings.Join(problems, "; ")
}

// awaitChange follows the syncs after a change until the kernel shows it:
// a new Service's EndpointSlice may come one sync after the Service.
func awaitChange(p *process, v *ipvs.IPVS, key state.VSKey, written time.Time,
	check func(map[state.RSKey]state.RealServer) string) (Change, error) {
	var c Change
	var first, last syncLine
	deadline := written.Add(5 * time.Minute)
	for {
		s, err := p.next(time.Until(deadline), func(s syncLine) bool { return s.Type != "drain" && s.Ops > 0 })
		if err != nil {
			return c, err
		}
		if c.Syncs == 0 {
			first = s
		}
		last = s
		c.Syncs++
		c.Ops += s.Ops
		c.Messages += s.Messages
		c.Collided = c.Collided || s.Type == "full"
		checked := time.Now()
		dests, err := v.DumpDestinations([]state.VSKey{key})
		if err != nil {
			return c, err
		}
		if c.Problem = check(dests[key]); c.Problem == "" || time.Now().After(deadline) {
			// Syncs that ended before the check are part of what it saw.
			for {
				s, ok := p.take(func(s syncLine) bool { return s.Type != "drain" && s.Ops > 0 })
				if !ok || s.TS.After(checked.Add(10*time.Millisecond)) {
					break
				}
				last = s
				c.Syncs++
				c.Ops += s.Ops
				c.Messages += s.Messages
			}
			break
		}
	}
	// From the source delivering the change to the end of the last sync.
	c.SinceChange = last.TS.Sub(first.TS) + first.SinceChange
	c.Total = last.TS.Sub(written)
	return c, nil
}

// changes makes rounds of four changes, one at a time, each timed by the
// sync that applied it, and checks the kernel after each.
func (g *guest) changes(w *manifests, p *process, ns string, rounds int, res *ScaleResult) error {
	v := ipvs.New(ipvs.Config{NetNSPath: netNS{Name: ns}.Path()})
	if err := v.Open(); err != nil {
		return err
	}
	defer v.Close()
	target := workload.ServiceSpec(0)
	targetKey := state.VSKey{Proto: state.TCP, Addr: target.ClusterIP, Port: 80}
	extraRS := state.RSKey{Addr: workload.ExtraEndpoint(0), Port: 8080}
	for k := range rounds {
		added := workload.ServiceSpec(workload.ExtraBase + k*10)
		addedKey := state.VSKey{Proto: state.TCP, Addr: added.ClusterIP, Port: 80}
		steps := []struct {
			kind    string
			wantOps int
			do      func() error
			check   func(map[state.RSKey]state.RealServer) string
			key     state.VSKey
		}{
			{"endpoint added", 1, func() error { return w.setExtraEndpoint(0, true) }, func(m map[state.RSKey]state.RealServer) string {
				if rs, ok := m[extraRS]; !ok || rs.Weight != 1 {
					return "the new real server is not there with weight 1"
				}
				return ""
			}, targetKey},
			{"endpoint removed", 1, func() error { return w.setExtraEndpoint(0, false) }, func(m map[state.RSKey]state.RealServer) string {
				if rs, ok := m[extraRS]; ok && rs.Weight != 0 {
					return "the removed real server still has weight " + fmt.Sprint(rs.Weight)
				}
				return ""
			}, targetKey},
			// address, virtual server, 10 real servers, KUBE-CLUSTER-IP and KUBE-IPVS-IPS members
			{"Service added", 14, func() error { return w.addService(k) }, func(m map[state.RSKey]state.RealServer) string {
				if len(m) != workload.EndpointsPer {
					return fmt.Sprintf("the new virtual server has %d real servers", len(m))
				}
				return ""
			}, addedKey},
			// virtual server, address, two set members
			{"Service deleted", 4, func() error { return w.deleteService(k) }, func(m map[state.RSKey]state.RealServer) string {
				if len(m) != 0 {
					return fmt.Sprintf("the deleted virtual server still has %d real servers", len(m))
				}
				return ""
			}, addedKey},
		}
		for _, st := range steps {
			time.Sleep(300 * time.Millisecond)
			p.drain()
			written := time.Now()
			if err := st.do(); err != nil {
				return err
			}
			c, err := awaitChange(p, v, st.key, written, st.check)
			if err != nil {
				return err
			}
			c.Kind, c.WantOps = st.kind, st.wantOps
			res.Changes = append(res.Changes, c)
			log.Printf("N=%d %s: sinceChange %s, total %s, %d ops, %d messages in %d syncs%s%s", res.N, c.Kind, c.SinceChange,
				c.Total, c.Ops, c.Messages, c.Syncs, map[bool]string{true: " (applied by a full sync)", false: ""}[c.Collided], c.Problem)
		}
	}
	return nil
}
