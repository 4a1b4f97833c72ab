package proxier

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/apply"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/plan"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"github.com/ipvs-proxy/ipvs-proxy/internal/syncevent"
)

// SyncStats describes one sync.
type SyncStats struct {
	// Type is "full", "partial" or "drain".
	Type     string
	Start    time.Time
	Duration time.Duration
	// Services is the number of Services recomputed.
	Services int
	// Ops is the number of planned operations; Failed how many failed.
	Ops, Failed int
	// Messages counts kernel write requests sent.
	Messages int
	// SinceChange is the time from the source delivering the oldest change
	// this sync applied to the sync's end (zero when no change was pending).
	SinceChange time.Duration
	Counts      map[plan.Kind]int
	// Err holds the node's failures (observing the kernel, the link, sets,
	// rules, sysctls, ...): the sync failed. A Service's failed operations
	// are that Service's (FailingServices), retried on their own.
	Err error
	// FailingServices counts the Services whose operations failed in this sync.
	FailingServices int
	// Phases say where the time went (see syncevent.Event.Phases).
	Phases []syncevent.Phase
	// Planned are the sync's planned operations (valid during OnSync only).
	Planned []plan.Op
	// RetryAfter is, for a failed sync, the wait before its retry (0 when a
	// retry was already pending).
	RetryAfter time.Duration
	// Failing are the Services whose operations failed in this sync.
	Failing []syncevent.ServiceFailure
}

// phase records that the named phase ran from start until now and returns now.
func (st *SyncStats) phase(name string, start time.Time) time.Time {
	now := time.Now()
	st.Phases = append(st.Phases, syncevent.Phase{Name: name, Took: now.Sub(start)})
	return now
}

// sync runs one full or incremental sync and reports whether it succeeded.
func (p *Proxier) sync() bool {
	start := time.Now()
	ch := p.store.take()
	var st SyncStats
	if p.sourceWait > 0 {
		st.Phases = append(st.Phases, syncevent.Phase{Name: "source", Took: p.sourceWait})
		p.sourceWait = 0
	}
	if p.needFull || p.index == nil || ch.nodeDirty {
		p.fullSync(ch, &st)
	} else {
		p.partialSync(ch, &st)
	}
	st.Start, st.Duration = start, time.Since(start)
	if !ch.first.IsZero() {
		st.SinceChange = time.Since(ch.first)
	}
	p.publishFamilyMetrics()
	p.finish(st, ch)
	p.publishHealthChecks()
	return st.Err == nil
}

// recompute refreshes the fragments of the changed Services (all of them
// when the node or config changed) and returns what they touched.
func (p *Proxier) recompute(ch changes, all bool) (*desired.Touched, int) {
	t := desired.NewTouched()
	keys := make([]string, 0, len(ch.dirty))
	if all {
		keys = p.store.keys()
	} else {
		for k := range ch.dirty {
			keys = append(keys, k)
		}
	}
	p.probeSchedulers(keys)
	for _, key := range keys {
		svc, eps := p.store.service(key)
		var f *desired.Fragment
		if svc != nil {
			f = p.compute(key, svc, eps)
		} else {
			delete(p.lastValid, key)
			delete(p.failing, key)
		}
		p.index.Replace(key, f, t)
		p.reportErrors(key)
		p.noteNoLocal(key, f)
	}
	// Services that shared a virtual server or health check port with a
	// changed one may have won or lost it: their errors are told again (a
	// Service whose errors did not change is not reported twice).
	for _, key := range p.index.TakeConflictChanges() {
		p.reportErrors(key)
	}
	p.origins.update(p.index, t.Services)
	return t, len(keys)
}

// publishHealthChecks hands the health-check node ports, each with the
// Service that keeps it, to the servers when they changed.
func (p *Proxier) publishHealthChecks() {
	if p.cfg.HealthChecks == nil || p.index == nil {
		return
	}
	now := p.index.HealthChecks()
	if maps.Equal(now, p.checks) {
		return
	}
	p.checks = now
	out := make(map[uint16]HealthCheck, len(now))
	for port, c := range now {
		ns, name, _ := strings.Cut(c.Service, "/")
		out[port] = HealthCheck{Namespace: ns, Name: name, LocalEndpoints: c.LocalEndpoints}
	}
	p.cfg.HealthChecks(out)
}

// compute returns a Service's fragment. When a new version is rejected as a
// whole, the last valid version stays programmed until it is fixed: bad
// input must not take down a working Service.
func (p *Proxier) compute(key string, svc *Service, eps []*EndpointSlice) *desired.Fragment {
	f := desired.ForService(p.in, svc, eps)
	if !f.Rejected {
		p.lastValid[key] = svc
		return f
	}
	last := p.lastValid[key]
	if last == nil {
		return f
	}
	kept := desired.ForService(p.in, last, eps)
	kept.Errors = append(slices.Clone(f.Errors), fmt.Errorf("Service %s: keeping its last valid version in the kernel until it is fixed", key))
	return kept
}

func (p *Proxier) fullSync(ch changes, st *SyncStats) {
	st.Type = "full"
	start := time.Now()
	p.recheckMissingSchedulers()
	in, err := p.nodeInput(ch.node)
	if err != nil {
		st.Err = err
		p.store.requeue(ch)
		return
	}
	if p.index == nil || ch.nodeDirty || !sameInput(p.in, in) {
		p.in = in
		old := p.index
		p.index = desired.NewIndex(desired.Base(in))
		p.index.InheritMarks(old) // a rebuilt index keeps every in-cluster mark
		p.origins.reset()
		_, st.Services = p.recompute(ch, true)
	} else {
		_, st.Services = p.recompute(ch, false)
	}
	want := p.index.State()
	start = st.phase("compute", start)
	reads := map[string]time.Duration{}
	observed, err := apply.ObserveTimed(p.cfg.Kernel, want, false, reads)
	start = st.phase("observe", start)
	for _, r := range []string{apply.ReadIPVS, apply.ReadAddresses, apply.ReadIPSet, apply.ReadRules} {
		st.Phases = append(st.Phases, syncevent.Phase{Name: "observe/" + r, Took: reads[r]})
	}
	if observed == nil {
		st.Err = fmt.Errorf("read kernel state: %w", err)
		return
	}
	if err != nil {
		p.log.Warn("partial kernel read; continuing", zap.Error(err))
	}
	if !p.marksAdopted {
		// The first read of the kernel since the start: the in-cluster
		// virtual servers keep the marks they have there.
		p.marksAdopted = true
		if t := p.index.AdoptMarks(observed); !t.Empty() {
			p.origins.update(p.index, t.Services)
			want = p.index.State()
		}
	}
	pl := plan.Diff(want, observed, p.planOptions(nil, true))
	p.believed = observed
	st.phase("plan", start)
	st.Failing = p.noteFailures(nil, p.run(pl, want, st), time.Now())
	p.draining = map[state.VSKey]struct{}{}
	for k, svc := range p.believed.Services {
		p.noteDraining(k, svc, want.Services[k])
	}
	if m := p.cfg.Metrics; m != nil {
		rs := 0
		for _, s := range want.Services {
			rs += len(s.RealServers)
		}
		m.VirtualServer.Set(float64(len(want.Services)))
		m.RealServers.Set(float64(rs))
	}
}

func (p *Proxier) partialSync(ch changes, st *SyncStats) {
	st.Type = "partial"
	start := time.Now()
	t, n := p.recompute(ch, false)
	st.Services = n
	t.Merge(p.dueRetries(time.Now()))
	if t.Empty() {
		return
	}
	want := p.index.Partial(t)
	start = st.phase("compute", start)
	pl := plan.Diff(want, p.believed, p.planOptions(t, false))
	st.phase("plan", start)
	st.Failing = p.noteFailures(t, p.run(pl, want, st), time.Now())
	for k := range t.Services {
		if svc := p.believed.Services[k]; svc != nil {
			p.noteDraining(k, svc, want.Services[k])
		}
	}
}

// drainCheck deletes drained real servers whose connections have ended.
func (p *Proxier) drainCheck() {
	if len(p.draining) == 0 || p.believed == nil {
		return
	}
	start := time.Now()
	st := SyncStats{Type: "drain"}
	scope := state.NewScope()
	keys := make([]state.VSKey, 0, len(p.draining))
	for k := range p.draining {
		scope.Services[k] = struct{}{}
		keys = append(keys, k)
	}
	if err := apply.RefreshDestinations(p.cfg.Kernel, p.believed, keys); err != nil {
		p.log.Warn("drain check: cannot read real servers", zap.Error(err))
		return
	}
	want := p.index.Partial(scope)
	pl := plan.Diff(want, p.believed, p.planOptions(scope, true))
	st.Failing = p.noteFailures(scope, p.run(pl, want, &st), time.Now())
	for _, k := range keys {
		delete(p.draining, k)
		if svc := p.believed.Services[k]; svc != nil {
			p.noteDraining(k, svc, want.Services[k])
		}
	}
	st.Start, st.Duration = start, time.Since(start)
	if st.Ops > 0 {
		p.finish(st, changes{})
	}
}

// noteDraining remembers a virtual server that holds real servers nobody wants.
func (p *Proxier) noteDraining(k state.VSKey, have, want *state.Service) {
	if want == nil {
		return
	}
	for rk := range have.RealServers {
		if _, ok := want.RealServers[rk]; !ok {
			p.draining[k] = struct{}{}
			return
		}
	}
}

func (p *Proxier) planOptions(scope *state.Scope, connsKnown bool) plan.Options {
	return plan.Options{Scope: scope, ConnsKnown: connsKnown, ExcludeCIDRs: p.cfg.Config.IPVS.ExcludeCIDRs, NodeAddresses: p.hadAddrs,
		Backend: p.cfg.Config.RulesBackend}
}

// run applies a plan and records what took effect in the believed state.
// It returns the Services whose operations failed; the node's failures
// fail the sync (st.Err) and call for a full resync.
func (p *Proxier) run(pl *plan.Plan, want *state.State, st *SyncStats) map[string]*failure {
	st.Ops = len(pl.Ops)
	if pl.Empty() {
		return nil
	}
	if ce := p.log.Check(zap.DebugLevel, "plan"); ce != nil {
		for _, op := range pl.Ops {
			p.log.Debug("op", zap.String("op", op.String()))
		}
	}
	st.Planned = pl.Ops
	res := p.apl.Apply(pl)
	for sub := plan.Subsystem(0); sub <= plan.SubConntrack; sub++ {
		if took, ok := res.Took[sub]; ok {
			st.Phases = append(st.Phases, syncevent.Phase{Name: "apply/" + sub.String(), Took: took})
		}
	}
	start := time.Now()
	for i, op := range pl.Ops {
		if res.Done[i] {
			plan.Record(p.believed, op, want.Rules)
		}
	}
	st.phase("record", start)
	st.Failed, st.Messages, st.Counts = res.Failed(), res.Messages, res.Applied
	var failing map[string]*failure
	if res.Failed() > 0 {
		var node []error
		node, failing = p.split(pl, res)
		st.FailingServices = len(failing)
		if len(node) > 0 {
			st.Err = errors.Join(node...)
			p.needFull = true
		}
	}
	if m := p.cfg.Metrics; m != nil {
		for k, n := range res.Applied {
			m.OpsApplied.WithLabelValues(k.String()).Add(float64(n))
		}
		for i, op := range pl.Ops {
			if !res.Done[i] {
				m.KernelErrors.WithLabelValues(op.Kind.String()).Inc()
			}
		}
	}
	return failing
}

// finish logs and records the outcome of a sync.
func (p *Proxier) finish(st SyncStats, ch changes) {
	fields := []zap.Field{zap.String("type", st.Type), zap.Int("services", st.Services), zap.Int("ops", st.Ops),
		zap.Int("failed", st.Failed), zap.Int("messages", st.Messages), zap.Duration("took", st.Duration)}
	if st.FailingServices > 0 {
		fields = append(fields, zap.Int("failingServices", st.FailingServices))
	}
	if st.SinceChange > 0 {
		fields = append(fields, zap.Duration("sinceChange", st.SinceChange))
	}
	m := p.cfg.Metrics
	result := "success"
	if st.Err != nil {
		result = "error"
		p.cfg.Health.Failed(st.Err)
		st.RetryAfter = p.retryAfter
		errs := unwrapJoined(st.Err)
		for i, e := range errs {
			if i == 10 {
				p.log.Warn("more kernel errors", zap.Int("count", len(errs)-10))
				break
			}
			p.log.Warn("kernel operation failed", zap.Error(e))
		}
		p.log.Warn("sync incomplete; a full resync is pending", fields...)
	} else {
		if st.Type != "drain" {
			p.needFull = p.needFull && st.Type != "full"
			p.cfg.Health.Synced(st.Start, st.Type == "full")
		}
		if st.Ops > 0 || st.Type == "full" {
			p.log.Info("synced", fields...)
		} else {
			p.log.Debug("synced", fields...)
		}
	}
	if m != nil {
		m.Syncs.WithLabelValues(st.Type, result).Inc()
		secs := st.Duration.Seconds()
		m.SyncDuration.Observe(secs)
		switch st.Type {
		case "full":
			m.FullSyncDuration.Observe(secs)
		case "partial":
			m.PartialSyncDuration.Observe(secs)
		}
		m.ServiceChanges.Add(float64(ch.svcN))
		m.EndpointChanges.Add(float64(ch.epN))
		if st.Err == nil {
			m.LastSync.SetToCurrentTime()
			for _, t := range ch.triggered {
				if !t.IsZero() {
					m.NetworkProgramming.Observe(time.Since(t).Seconds())
				}
			}
		}
		svc, ep := p.store.pending()
		m.ServiceChangesPending.Set(float64(svc))
		m.EndpointChangesPending.Set(float64(ep))
	}
	if p.cfg.OnSync != nil {
		p.cfg.OnSync(st)
	}
}

func unwrapJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// sameInput reports whether two compute inputs would give the same fragments.
func sameInput(a, b *desired.Input) bool {
	if a == nil || b == nil || a.Config != b.Config {
		return false
	}
	return slices.Equal(a.Node.Addresses, b.Node.Addresses) && a.Node.Name == b.Node.Name &&
		maps.Equal(a.Node.Labels, b.Node.Labels) && slices.Equal(a.Node.PrimaryAddresses, b.Node.PrimaryAddresses) &&
		slices.Equal(a.Node.PodCIDRs, b.Node.PodCIDRs) && slices.Equal(a.Node.ServiceCIDRs, b.Node.ServiceCIDRs) && a.Node.CPUs == b.Node.CPUs &&
		a.Node.KernelRelease == b.Node.KernelRelease && sameSchedulers(a, b)
}
