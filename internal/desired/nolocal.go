package desired

import "github.com/ipvs-proxy/ipvs-proxy/internal/state"

// NoLocal says which Local traffic policies of a Service found endpoints
// elsewhere in the cluster but none on this node, for one IP family
// (kube-proxy's sync_proxy_rules_no_local_endpoints_total{traffic_policy}).
type NoLocal struct {
	// Internal: internalTrafficPolicy Local.
	Internal bool
	// External: externalTrafficPolicy Local, on a Service reachable from
	// outside (a NodePort, an external IP or a load balancer IP).
	External bool
}

// noteNoLocal records a port without local endpoints whose Service has some elsewhere.
func (b *fragmentBuilder) noteNoLocal(fam state.Family, p servicePort, local, cluster []endpoint) {
	s := b.s
	external := s.externalLocal && (p.nodePort != 0 || len(s.externalIPs) > 0 || len(s.lbIPs) > 0)
	if len(local) > 0 || len(cluster) == 0 || (!s.internalLocal && !external) {
		return
	}
	if b.f.NoLocalEndpoints == nil {
		b.f.NoLocalEndpoints = map[state.Family]NoLocal{}
	}
	n := b.f.NoLocalEndpoints[fam]
	n.Internal = n.Internal || s.internalLocal
	n.External = n.External || external
	b.f.NoLocalEndpoints[fam] = n
}
