package proxier

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/apply"
	"github.com/ipvs-proxy/ipvs-proxy/internal/plan"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"github.com/ipvs-proxy/ipvs-proxy/internal/syncevent"
)

// A Service whose kernel operations fail is that Service's problem, not
// the node's: one tenant's object that the kernel keeps refusing must not
// make /healthz fail on every node (load balancers would drop them all) nor
// put the node into a loop of full resyncs. Its failed objects are retried
// on their own with a backoff (and by every periodic full sync), and it is
// reported: a log line, the Service's errors (a Warning Event, `ipvs-proxy
// status`) and the ipvsproxy_failing_services metric. Failures of what is
// the node's — the link, sets, rules, sysctls, timeouts, objects no Service
// wants any more — fail the sync as before.

// failure is a Service whose kernel operations failed.
type failure struct {
	// scope holds the objects whose operations failed, retried on their own.
	scope    *state.Scope
	since    time.Time
	attempts int
	next     time.Time
	// errs are the last attempt's errors (at most maxFailureErrs).
	errs []error
}

const maxFailureErrs = 5

// split sorts a plan's failed operations into the node's errors and those of
// each Service's objects.
func (p *Proxier) split(pl *plan.Plan, res *apply.Result) (node []error, svcs map[string]*failure) {
	var owners *ownerIndex
	for i, op := range pl.Ops {
		if res.Done[i] {
			continue
		}
		err := res.ErrOf[i]
		if err == nil { // not run: its batch failed as a whole (a conntrack flush)
			err = fmt.Errorf("%s: not done", apply.Describe(op))
		}
		scope := state.NewScope()
		var svcKeys []string
		switch op.Kind {
		case plan.AddVS, plan.EditVS, plan.AddRS, plan.EditRS, plan.DelRS, plan.DelVS, plan.FlushConntrack:
			scope.Services[op.VS.Key] = struct{}{}
			if s := p.serviceOf(op.VS); s != "" {
				svcKeys = []string{s}
			}
		case plan.AddAddress, plan.DelAddress:
			scope.Addresses[op.Addr] = struct{}{}
			if owners == nil {
				owners = p.owners()
			}
			svcKeys = owners.addrs[op.Addr]
		case plan.AddEntry, plan.DelEntry:
			m := state.SetMember{Set: op.Set.Name, Entry: op.Entry}
			scope.Members[m] = struct{}{}
			if owners == nil {
				owners = p.owners()
			}
			svcKeys = owners.members[m]
		}
		if len(svcKeys) == 0 {
			node = append(node, err)
			continue
		}
		if svcs == nil {
			svcs = map[string]*failure{}
		}
		for _, key := range svcKeys {
			f := svcs[key]
			if f == nil {
				f = &failure{scope: state.NewScope()}
				svcs[key] = f
			}
			f.scope.Merge(scope)
			if len(f.errs) < maxFailureErrs {
				f.errs = append(f.errs, err)
			}
		}
	}
	return node, svcs
}

// serviceOf returns the Service a virtual server belongs to: the one that
// wants it now, or the one recorded on the operation ("" when nobody wants it).
func (p *Proxier) serviceOf(vs state.VirtualServer) string {
	if p.index != nil {
		if w, ok := p.index.Wanted(vs.Key); ok {
			return w.Origin.Service
		}
	}
	return vs.Origin.Service
}

// ownerIndex maps addresses and set members to the Services that want them.
type ownerIndex struct {
	addrs   map[netip.Addr][]string
	members map[state.SetMember][]string
}

// owners builds an ownerIndex from the desired fragments; it costs a pass
// over every fragment, so it is built only when an address or set member
// operation failed.
func (p *Proxier) owners() *ownerIndex {
	o := &ownerIndex{addrs: map[netip.Addr][]string{}, members: map[state.SetMember][]string{}}
	if p.index == nil {
		return o
	}
	for _, key := range p.index.Keys() {
		f := p.index.Fragment(key)
		for _, a := range f.Addresses {
			o.addrs[a] = append(o.addrs[a], key)
		}
		for _, m := range f.Members {
			o.members[m] = append(o.members[m], key)
		}
	}
	return o
}

// noteFailures updates the failing Services after a sync that covered scope
// (nil: everything, a full sync): Services that failed get a later retry,
// those in scope that did not are fine again. It returns the failures as
// the sync's event records them, sorted by Service.
func (p *Proxier) noteFailures(scope *state.Scope, failed map[string]*failure, now time.Time) []syncevent.ServiceFailure {
	changed := map[string]bool{}
	var out []syncevent.ServiceFailure
	for key, f := range p.failing {
		if failed[key] == nil && (scope == nil || f.scope.Intersects(scope)) {
			delete(p.failing, key)
			changed[key] = true
			p.log.Info("Service's kernel operations succeed again", zap.String("service", key), zap.Int("attempts", f.attempts))
		}
	}
	for key, f := range failed {
		old := p.failing[key]
		if old == nil {
			f.since = now
		} else {
			f.since, f.attempts = old.since, old.attempts
			f.scope.Merge(old.scope)
		}
		f.attempts++
		f.next = now.Add(p.serviceBackoff(f.attempts))
		p.failing[key] = f
		if old == nil || !sameErrors(old.errs, f.errs) {
			changed[key] = true
		}
		p.log.Warn("Service's kernel operations failed; retrying it on its own (the node stays healthy)", zap.String("service", key),
			zap.Int("attempts", f.attempts), zap.Duration("retryAfter", f.next.Sub(now)), zap.Error(errors.Join(f.errs...)))
		sf := syncevent.ServiceFailure{Service: key, Attempts: f.attempts, RetryAfter: f.next.Sub(now)}
		for _, e := range f.errs {
			sf.Errors = append(sf.Errors, e.Error())
		}
		out = append(out, sf)
	}
	slices.SortFunc(out, func(a, b syncevent.ServiceFailure) int { return strings.Compare(a.Service, b.Service) })
	for key := range changed {
		p.reportErrors(key)
	}
	if m := p.cfg.Metrics; m != nil {
		m.FailingServices.Set(float64(len(p.failing)))
	}
	return out
}

// serviceBackoff is the wait before the n-th retry of a failing Service:
// RetryMin doubled each time, at most ServiceRetryMax.
func (p *Proxier) serviceBackoff(n int) time.Duration {
	d := p.cfg.RetryMin
	for i := 1; i < n && d < p.cfg.ServiceRetryMax; i++ {
		d *= 2
	}
	return min(d, p.cfg.ServiceRetryMax)
}

// dueRetries returns the objects of the failing Services whose retry is due.
func (p *Proxier) dueRetries(now time.Time) *state.Scope {
	s := state.NewScope()
	for _, f := range p.failing {
		if !f.next.After(now) {
			s.Merge(f.scope)
		}
	}
	return s
}

// nextRetry returns when the next failing Service is due (zero: none).
func (p *Proxier) nextRetry() time.Time {
	var next time.Time
	for _, f := range p.failing {
		if next.IsZero() || f.next.Before(next) {
			next = f.next
		}
	}
	return next
}

// failureErrors renders a failing Service's state for its error report.
func (p *Proxier) failureErrors(key string) []error {
	f := p.failing[key]
	if f == nil {
		return nil
	}
	out := []error{fmt.Errorf("Service %s: the kernel refuses its operations (since %s); retrying it on its own with a backoff",
		key, f.since.UTC().Format(time.RFC3339))}
	return append(out, f.errs...)
}

func sameErrors(a, b []error) bool {
	return slices.EqualFunc(a, b, func(x, y error) bool { return x.Error() == y.Error() })
}
