// Package proxier runs the sync loop: it takes changes from a source (the
// API server or a manifest directory), computes the desired state of the
// changed Services, plans the difference with what the kernel holds and
// applies it.
//
// The first sync, once the source has delivered everything, is a full sync
// that adopts what the kernel already holds (a restart never flushes live
// traffic). Later changes are coalesced and applied incrementally, touching
// only the changed Services' objects, from a believed kernel state that is
// kept exact by recording every applied operation. A periodic full sync
// re-reads the kernel and repairs any drift.
package proxier

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/apply"
	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/health"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/metrics"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Reporter hears about Services that cannot be programmed as written.
type Reporter interface {
	// ServiceErrors is called when a Service's errors change (nil: it is fine again).
	ServiceErrors(service string, errs []error)
}

// Config configures a Proxier.
type Config struct {
	Kernel  kernel.Kernel
	Config  *config.Config
	Log     *zap.Logger
	Metrics *metrics.Metrics
	Health  *health.Tracker
	// Reporter hears about invalid Services; may be nil.
	Reporter Reporter
	// DrainCheckPeriod is how often drained real servers are checked for
	// remaining connections (default 5 s).
	DrainCheckPeriod time.Duration
	// RetryMin and RetryMax bound the backoff after a failed sync (defaults 1 s, 30 s).
	RetryMin, RetryMax time.Duration
	// ServiceRetryMax bounds the backoff of a Service whose kernel
	// operations fail, retried on its own (default 2 minutes).
	ServiceRetryMax time.Duration
	// TurnPeriod is how often the idle sync loop reports to Health that it
	// turns, for /livez (default 10 s).
	TurnPeriod time.Duration
	// CPUs sizes the conntrack table (conntrack.maxPerCore); 0 leaves it alone.
	CPUs int
	// KernelRelease is the running kernel's release (uname -r): it decides
	// net/ipv4/vs/conn_reuse_mode (see desired.ConnReuseMode).
	KernelRelease string
	// OnSync, if set, is called after every sync with what it did (benchmarks, tests).
	OnSync func(SyncStats)
	// HealthChecks, if set, is called with every healthCheckNodePort (of
	// LoadBalancer Services with externalTrafficPolicy Local) when they change.
	HealthChecks func(map[uint16]HealthCheck)
}

// HealthCheck is what a Service's health-check node port answers about this node.
type HealthCheck struct {
	Namespace, Name string
	LocalEndpoints  int
}

// Proxier is the sync loop. Sources feed it through the Upsert/Delete/Set
// methods from any goroutine.
type Proxier struct {
	cfg   Config
	log   *zap.Logger
	store *store
	apl   *apply.Applier

	// owned by the sync loop
	in       *desired.Input
	index    *desired.Index
	believed *state.State
	draining map[state.VSKey]struct{}
	errs     map[string][]error
	// lastValid is each Service's last version that was not rejected.
	lastValid map[string]*Service
	// checks are the health-check node ports last handed to HealthChecks.
	checks   map[uint16]desired.HealthCheck
	needFull bool
	// retryAfter is the wait before retrying if the sync under way fails
	// (0 when a retry is already pending): recorded in its sync event.
	retryAfter time.Duration
	// marksAdopted says the in-cluster marks were taken from the kernel.
	marksAdopted bool
	views        chan chan<- *View
	origins      Origins
	// failing are the Services whose kernel operations failed, by key.
	failing map[string]*failure
	// nodeAddrs is the last good read of the host's addresses (nil: none yet).
	nodeAddrs []netip.Addr
	// hadAddrs are every address the node has had since the start: NodePort
	// virtual servers are ours only on them.
	hadAddrs map[netip.Addr]bool
	// schedulers says which schedulers the kernel has, as probed (see schedprobe.go).
	schedulers map[string]bool

	// noLocal: Services whose Local traffic policy has no local endpoints (policymetrics.go).
	noLocal map[string]map[state.Family]desired.NoLocal
	// configs carries SetConfig's configurations to the sync loop (reconfig.go).
	configs chan *config.Config
	// sourceWait is how long Run waited for the source's initial state,
	// reported as the first sync's "source" phase.
	sourceWait time.Duration
}

// New returns a Proxier; it does no I/O until Run.
func New(cfg Config) *Proxier {
	if cfg.DrainCheckPeriod == 0 {
		cfg.DrainCheckPeriod = 5 * time.Second
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 30 * time.Second
	}
	if cfg.ServiceRetryMax == 0 {
		cfg.ServiceRetryMax = 2 * time.Minute
	}
	if cfg.TurnPeriod == 0 {
		cfg.TurnPeriod = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Health == nil {
		cfg.Health = health.NewTracker(2*cfg.Config.IPVS.SyncPeriod, 0, nil)
	}
	return &Proxier{cfg: cfg, log: cfg.Log, store: newStore(), apl: apply.New(cfg.Kernel),
		draining: map[state.VSKey]struct{}{}, errs: map[string][]error{}, lastValid: map[string]*Service{}, needFull: true,
		views: make(chan chan<- *View), configs: make(chan *config.Config),
		failing: map[string]*failure{}}
}

// Source-facing methods.

// UpsertService records a new or changed Service.
func (p *Proxier) UpsertService(svc *Service) { p.store.UpsertService(svc); p.queued() }

// DeleteService records a deleted Service.
func (p *Proxier) DeleteService(namespace, name string) {
	p.store.DeleteService(namespace, name)
	p.queued()
}

// UpsertSlice records a new or changed EndpointSlice.
func (p *Proxier) UpsertSlice(es *EndpointSlice) { p.store.UpsertSlice(es); p.queued() }

// DeleteSlice records a deleted EndpointSlice.
func (p *Proxier) DeleteSlice(namespace, name string) {
	p.store.DeleteSlice(namespace, name)
	p.queued()
}

// SetNode records the node's name, labels, addresses and pod CIDRs.
func (p *Proxier) SetNode(n NodeInfo) { p.store.SetNode(n); p.queued() }

// SetServiceCIDRs records the cluster's service CIDRs; a change recomputes everything.
func (p *Proxier) SetServiceCIDRs(cidrs []netip.Prefix) { p.store.SetServiceCIDRs(cidrs); p.queued() }

// SetSynced tells the proxier the source has delivered its initial state.
func (p *Proxier) SetSynced() { p.store.SetSynced() }

// Origins returns the map of virtual servers to their Service ports.
func (p *Proxier) Origins() *Origins { return &p.origins }

// Health returns the health tracker.
func (p *Proxier) Health() *health.Tracker { return p.cfg.Health }

func (p *Proxier) queued() {
	p.cfg.Health.Queued()
	if m := p.cfg.Metrics; m != nil {
		m.LastQueued.SetToCurrentTime()
		svc, ep := p.store.pending()
		m.ServiceChangesPending.Set(float64(svc))
		m.EndpointChangesPending.Set(float64(ep))
	}
}

// Run syncs until ctx is done. Nothing is synced before the source has
// delivered its initial state and the node is known.
func (p *Proxier) Run(ctx context.Context) error {
	waitStart := time.Now()
	turn := time.NewTicker(p.cfg.TurnPeriod)
	defer turn.Stop()
	for !p.store.isSynced() {
		p.cfg.Health.Turned() // waiting for the source is not being stuck
		select {
		case <-ctx.Done():
			return nil
		case <-p.store.notify:
		case <-turn.C:
		case reply := <-p.views:
			p.answerView(reply)
		case cfg := <-p.configs:
			p.takeConfig(cfg)
		}
	}
	p.sourceWait = time.Since(waitStart)
	p.log.Info("source synced; starting with a full sync that adopts the kernel's state")
	full := time.NewTimer(0)
	drain := time.NewTicker(p.cfg.DrainCheckPeriod)
	defer drain.Stop()
	retry := p.cfg.RetryMin
	var retryTimer <-chan time.Time
	services := time.NewTimer(time.Hour) // the next retry of a failing Service
	services.Stop()
	var last time.Time
	for {
		p.cfg.Health.Turned()
		select {
		case <-ctx.Done():
			return nil
		case <-full.C:
			p.needFull = true
		case <-p.store.notify:
		case <-retryTimer:
			retryTimer = nil
		case <-services.C:
		case <-turn.C:
			continue
		case <-drain.C:
			p.drainCheck()
			continue
		case reply := <-p.views:
			p.answerView(reply)
			continue
		case cfg := <-p.configs:
			p.takeConfig(cfg)
		}
		if min := p.cfg.Config.IPVS.MinSyncPeriod; min > 0 && time.Since(last) < min {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(min - time.Since(last)):
			}
		}
		last = time.Now()
		fullSync := p.needFull
		if retryTimer == nil {
			p.retryAfter = retry
		}
		ok := p.sync()
		p.retryAfter = 0
		switch {
		case ok:
			retry = p.cfg.RetryMin
			if fullSync {
				full.Reset(p.cfg.Config.IPVS.SyncPeriod)
			}
		case retryTimer == nil:
			p.log.Warn("sync failed; retrying", zap.Duration("after", retry))
			retryTimer = time.After(retry)
			retry = min(2*retry, p.cfg.RetryMax)
		}
		services.Stop()
		if next := p.nextRetry(); !next.IsZero() {
			services.Reset(max(time.Until(next), 0))
		}
	}
}

// nodeInput builds the compute input from the Node object and the host's
// addresses. A failed read of the host's addresses, or one that finds none
// (a live node always has some), must never shrink what is programmed: the
// last good read is used, and without one the sync is skipped (err). The
// Node object's addresses are only added, never a substitute: on a
// dual-stack node whose Node lists only IPv4, the IPv6 side would go.
func (p *Proxier) nodeInput(n NodeInfo) (*desired.Input, error) {
	addrs, err := p.cfg.Kernel.Link.NodeAddresses()
	if err == nil && len(addrs) == 0 {
		err = errors.New("the node has no address at all")
	}
	switch {
	case err == nil:
		p.nodeAddrs = addrs
	case p.nodeAddrs != nil:
		p.log.Warn("cannot list the node's addresses; keeping the last ones read", zap.Error(err))
		addrs = p.nodeAddrs
	default:
		return nil, fmt.Errorf("cannot list the node's addresses, and none were read before: nothing is changed until they can be: %w", err)
	}
	seen := map[netip.Addr]bool{}
	var all []netip.Addr
	// the Node's primary address of each family serves NodePorts too
	for _, a := range append(slices.Clone(addrs), desired.PrimaryPerFamily(n.PrimaryAddresses)...) {
		if !seen[a] {
			seen[a] = true
			all = append(all, a)
		}
	}
	n.Addresses = all
	n.PrimaryAddresses = p.cfg.Config.PrimaryAddresses(n.PrimaryAddresses) // bindAddress
	n.CPUs = p.cfg.CPUs
	n.KernelRelease = p.cfg.KernelRelease
	if p.hadAddrs == nil {
		p.hadAddrs = map[netip.Addr]bool{}
	}
	for _, a := range all {
		p.hadAddrs[a] = true
	}
	in := desired.NewInput(p.cfg.Config, n)
	in.MissingSchedulers = p.missingSchedulers()
	return in, nil
}
