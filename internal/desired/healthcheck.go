package desired

import (
	"slices"
	"strconv"
	"strings"
)

// HealthCheck is what a healthCheckNodePort answers about this node.
type HealthCheck struct {
	// Service is "namespace/name".
	Service string
	// LocalEndpoints counts this node's ready endpoints (see Fragment).
	LocalEndpoints int
}

// claimHealthCheck records (delta +1) or forgets (-1) that service wants
// health check port p. Like a virtual server wanted by two Services, a port
// wanted by two goes to the Service whose namespace/name sorts first; for
// kube-proxy the second Service's listen fails, which it reports as an error.
func (x *Index) claimHealthCheck(service string, p uint16, delta int) {
	cs := x.hcClaims[p]
	for _, c := range cs {
		if c != service {
			x.conflictChanged[c] = struct{}{}
		}
	}
	i := slices.Index(cs, service)
	switch {
	case delta < 0 && i >= 0:
		cs = slices.Delete(cs, i, i+1)
	case delta > 0 && i < 0:
		cs = append(cs, service)
		slices.Sort(cs)
	}
	if len(cs) == 0 {
		delete(x.hcClaims, p)
	} else {
		x.hcClaims[p] = cs
	}
}

// healthCheckConflict is the error of a Service whose health check port
// another Service keeps, or nil.
func (x *Index) healthCheckConflict(service string, f *Fragment) error {
	p := f.HealthCheckNodePort
	if cs := x.hcClaims[p]; p == 0 || len(cs) < 2 || cs[0] == service {
		return nil
	}
	ns, name, _ := strings.Cut(service, "/")
	return &ObjectError{Kind: "Service", Namespace: ns, Name: name, Field: "spec.healthCheckNodePort",
		Msg: strconv.Itoa(int(p)) + " is also the health check port of Service " + x.hcClaims[p][0] + ", which keeps it"}
}

// HealthChecks returns every health check port with the Service that keeps it.
func (x *Index) HealthChecks() map[uint16]HealthCheck {
	out := make(map[uint16]HealthCheck, len(x.hcClaims))
	for p, cs := range x.hcClaims {
		out[p] = HealthCheck{Service: cs[0], LocalEndpoints: x.frags[cs[0]].LocalEndpoints}
	}
	return out
}

// TakeConflictChanges returns, and forgets, the Services that shared a
// virtual server or health check port with a Service replaced since the last
// call: which of them keeps it may have changed, and with it their errors.
func (x *Index) TakeConflictChanges() []string {
	out := make([]string, 0, len(x.conflictChanged))
	for s := range x.conflictChanged {
		if _, ok := x.frags[s]; ok {
			out = append(out, s)
		}
	}
	clear(x.conflictChanged)
	slices.Sort(out)
	return out
}
