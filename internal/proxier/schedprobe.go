package proxier

import (
	"errors"
	"maps"
	"net/netip"
	"syscall"

	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// A Service may name any scheduler IPVS knows in its annotation, but this
// node's kernel may lack the module: the kernel then refuses every operation
// of that Service. So each scheduler an annotation names is probed once (a
// virtual server no packet can match is created and deleted at once; the
// kernel loads the module if it can), and a Service naming a missing one is
// computed with the default scheduler and an error, like any invalid
// annotation. Missing schedulers are probed again at each full sync: loading
// the module later brings their Services to them.

// probeKey is a virtual server no packet can match (destination 0.0.0.0).
var probeKey = state.VSKey{Proto: state.TCP, Addr: netip.IPv4Unspecified(), Port: 1}

// probeScheduler asks the kernel whether it has a scheduler. known is false
// when the answer is not conclusive (an error other than "no such
// scheduler"): the scheduler is then taken as present, and the kernel's
// refusal, if any, is the Service's failure.
//
// Equivalent to: ipvsadm -A -t 0.0.0.0:1 -s NAME && ipvsadm -D -t 0.0.0.0:1
func probeScheduler(ipvs kernel.IPVS, name string) (present, known bool) {
	vs := state.VirtualServer{Key: probeKey, Scheduler: name}
	errs := ipvs.Exec([]kernel.IPVSOp{{Cmd: kernel.AddService, VS: vs}, {Cmd: kernel.DelService, VS: vs}})
	switch {
	case errs[0] == nil, errors.Is(errs[0], syscall.EEXIST):
		return true, true
	case errors.Is(errs[0], syscall.ENOENT):
		return false, true
	}
	return true, false
}

// probeSchedulers probes the schedulers named by the annotations of the
// given Services that were never probed, and updates the compute input
// when one is missing.
func (p *Proxier) probeSchedulers(keys []string) {
	if p.schedulers == nil {
		p.schedulers = map[string]bool{p.cfg.Config.IPVS.Scheduler: true} // checked at startup
	}
	missing := false
	for _, key := range keys {
		svc, _ := p.store.service(key)
		if svc == nil {
			continue
		}
		name, ok := desired.AnnotatedScheduler(svc.Annotations)
		if _, probed := p.schedulers[name]; !ok || probed {
			continue
		}
		present, known := probeScheduler(p.cfg.Kernel.IPVS, name)
		if !known {
			continue
		}
		p.schedulers[name] = present
		if !present {
			missing = true
			p.log.Warn("a Service names a scheduler this node's kernel lacks; it keeps the default", zap.String("service", key),
				zap.String("scheduler", name))
		}
	}
	if missing && p.in != nil {
		p.in = p.in.WithMissingSchedulers(p.missingSchedulers())
	}
}

// recheckMissingSchedulers probes the missing schedulers again (at each
// full sync): a module loaded meanwhile makes them present.
func (p *Proxier) recheckMissingSchedulers() {
	for name, present := range p.schedulers {
		if present {
			continue
		}
		if ok, known := probeScheduler(p.cfg.Kernel.IPVS, name); known && ok {
			p.schedulers[name] = true
			p.log.Info("a scheduler Services name is available now", zap.String("scheduler", name))
		}
	}
}

// missingSchedulers returns the schedulers known to be missing.
func (p *Proxier) missingSchedulers() map[string]bool {
	out := map[string]bool{}
	for name, present := range p.schedulers {
		if !present {
			out[name] = true
		}
	}
	return out
}

// sameSchedulers compares two inputs' missing schedulers.
func sameSchedulers(a, b *desired.Input) bool {
	return maps.Equal(a.MissingSchedulers, b.MissingSchedulers)
}
