package proxier

import (
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/metrics"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// noteNoLocal tracks the Services whose Local traffic policy finds
// endpoints elsewhere but none on this node.
func (p *Proxier) noteNoLocal(key string, f *desired.Fragment) {
	if f == nil || len(f.NoLocalEndpoints) == 0 {
		delete(p.noLocal, key)
		return
	}
	if p.noLocal == nil {
		p.noLocal = map[string]map[state.Family]desired.NoLocal{}
	}
	p.noLocal[key] = f.NoLocalEndpoints
}

// publishFamilyMetrics sets the IP families the node serves on the
// per-family metrics and kubeproxy_sync_proxy_rules_no_local_endpoints_total
// for each of them, as kube-proxy counts it: Services, not ports.
func (p *Proxier) publishFamilyMetrics() {
	m := p.cfg.Metrics
	if m == nil || p.in == nil {
		return
	}
	fams := p.in.Node.Families()
	names := make([]string, 0, len(fams))
	for _, f := range fams {
		names = append(names, familyName(f))
	}
	m.SetFamilies(names)
	for _, f := range fams {
		internal, external := 0, 0
		for _, byFamily := range p.noLocal {
			n := byFamily[f]
			if n.Internal {
				internal++
			}
			if n.External {
				external++
			}
		}
		m.NoLocalEndpoints.WithLabelValues("internal", familyName(f)).Set(float64(internal))
		m.NoLocalEndpoints.WithLabelValues("external", familyName(f)).Set(float64(external))
	}
}

func familyName(f state.Family) string {
	if f == state.IPv6 {
		return metrics.IPv6
	}
	return metrics.IPv4
}
