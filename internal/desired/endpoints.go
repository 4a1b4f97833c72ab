package desired

import (
	"fmt"
	"net/netip"
	"slices"

	discovery "k8s.io/api/discovery/v1"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// endpoint is one usable backend of a Service port.
type endpoint struct {
	addr                        netip.Addr
	port                        uint16
	ready, serving, terminating bool
	local                       bool
	zoneHints, nodeHints        []string
}

func (e endpoint) key() state.RSKey { return state.RSKey{Addr: e.addr, Port: e.port} }

// sliceEndpoints is what one EndpointSlice offers, validated once per compute.
type sliceEndpoints struct {
	family state.Family
	ports  []slicePort
	eps    []endpoint // port left zero: filled per Service port
}

type slicePort struct {
	name  string
	proto state.Protocol
	port  uint16
}

// parseSlice validates an EndpointSlice. Invalid ports or endpoints are
// skipped with an error naming the field; FQDN slices are ignored.
func parseSlice(es *discovery.EndpointSlice, nodeName string, errs *objErrs) (sliceEndpoints, bool) {
	var out sliceEndpoints
	switch es.AddressType {
	case discovery.AddressTypeIPv4:
		out.family = state.IPv4
	case discovery.AddressTypeIPv6:
		out.family = state.IPv6
	case discovery.AddressTypeFQDN:
		return out, false
	default:
		errs.add("addressType", "unsupported address type %q (allowed: IPv4, IPv6, FQDN)", es.AddressType)
		return out, false
	}
	seen := map[string]bool{}
	for i, p := range es.Ports {
		field := fmt.Sprintf("ports[%d]", i)
		if p.Port == nil {
			continue // kube-proxy ignores ports without a number
		}
		proto, ok := protocolOf(p.Protocol)
		if !ok {
			errs.add(field+".protocol", "unsupported protocol %q (allowed: TCP, UDP, SCTP)", *p.Protocol)
			continue
		}
		if *p.Port < 1 || *p.Port > 65535 {
			errs.add(field+".port", "%d is out of range 1-65535", *p.Port)
			continue
		}
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		id := name + "/" + proto.String()
		if seen[id] {
			errs.add(field+".name", "duplicate port name %q for protocol %s", name, proto)
			continue
		}
		seen[id] = true
		out.ports = append(out.ports, slicePort{name: name, proto: proto, port: uint16(*p.Port)})
	}
	for i, ep := range es.Endpoints {
		field := fmt.Sprintf("endpoints[%d].addresses", i)
		if len(ep.Addresses) == 0 {
			errs.add(field, "no address")
			continue
		}
		addr, err := netip.ParseAddr(ep.Addresses[0])
		if err != nil {
			errs.add(field+"[0]", "invalid IP %q", ep.Addresses[0])
			continue
		}
		addr = addr.Unmap()
		if state.FamilyOf(addr) != out.family {
			errs.add(field+"[0]", "%s is not an %s address", addr, es.AddressType)
			continue
		}
		if why := specialIP(addr); why != "" {
			errs.add(field+"[0]", "%s %s", addr, why)
			continue
		}
		e := endpoint{addr: addr}
		e.ready = ep.Conditions.Ready == nil || *ep.Conditions.Ready
		e.serving = e.ready
		if ep.Conditions.Serving != nil {
			e.serving = *ep.Conditions.Serving
		}
		e.terminating = ep.Conditions.Terminating != nil && *ep.Conditions.Terminating
		e.local = ep.NodeName != nil && *ep.NodeName == nodeName && nodeName != ""
		if ep.Hints != nil {
			for _, z := range ep.Hints.ForZones {
				e.zoneHints = append(e.zoneHints, z.Name)
			}
			for _, n := range ep.Hints.ForNodes {
				e.nodeHints = append(e.nodeHints, n.Name)
			}
		}
		out.eps = append(out.eps, e)
	}
	return out, true
}

// portEndpoints gathers the endpoints of one Service port (matched by port
// name and protocol) across slices of family f, one per address:port, a
// ready copy preferred over a not-ready one (as kube-proxy's slice cache does).
func portEndpoints(parsed []sliceEndpoints, f state.Family, name string, proto state.Protocol) []endpoint {
	byKey := map[state.RSKey]int{}
	var out []endpoint
	for _, s := range parsed {
		if s.family != f {
			continue
		}
		for _, p := range s.ports {
			if p.name != name || p.proto != proto {
				continue
			}
			for _, e := range s.eps {
				e.port = p.port
				if i, dup := byKey[e.key()]; dup {
					if e.ready && !out[i].ready {
						out[i] = e
					}
					continue
				}
				byKey[e.key()] = len(out)
				out = append(out, e)
			}
		}
	}
	return out
}

// Topology modes chosen from the endpoints' hints.
const (
	topologyNone     = ""
	topologyZone     = "zone"
	topologySameNode = "node"
)

// topologyMode follows kube-proxy: hints are used only when every ready
// endpoint has them and at least one is meant for this node (or its zone).
func topologyMode(eps []endpoint, nodeName, zone string) string {
	allNode, anyNode, allZone, anyZone := true, false, true, false
	for _, e := range eps {
		if !e.ready {
			continue
		}
		if len(e.nodeHints) == 0 {
			allNode = false
		} else if slices.Contains(e.nodeHints, nodeName) {
			anyNode = true
		}
		if len(e.zoneHints) == 0 {
			allZone = false
		} else if zone != "" && slices.Contains(e.zoneHints, zone) {
			anyZone = true
		}
	}
	switch {
	case allNode && anyNode:
		return topologySameNode
	case allZone && anyZone:
		return topologyZone
	}
	return topologyNone
}

func availableForTopology(e endpoint, mode, nodeName, zone string) bool {
	switch mode {
	case topologyZone:
		return slices.Contains(e.zoneHints, zone)
	case topologySameNode:
		return slices.Contains(e.nodeHints, nodeName)
	}
	return true
}

// clusterEndpoints: ready endpoints allowed by topology; if there are none,
// the serving terminating ones (kube-proxy's fallback).
func clusterEndpoints(eps []endpoint, nodeName, zone string) []endpoint {
	mode := topologyMode(eps, nodeName, zone)
	out := filter(eps, func(e endpoint) bool { return e.ready && availableForTopology(e, mode, nodeName, zone) })
	if len(out) == 0 {
		out = filter(eps, func(e endpoint) bool {
			return e.serving && e.terminating && availableForTopology(e, mode, nodeName, zone)
		})
	}
	return out
}

// localEndpoints: this node's ready endpoints, or its serving terminating ones if none is ready.
func localEndpoints(eps []endpoint) []endpoint {
	out := filter(eps, func(e endpoint) bool { return e.local && e.ready })
	if len(out) == 0 {
		out = filter(eps, func(e endpoint) bool { return e.local && e.serving && e.terminating })
	}
	return out
}

func filter(eps []endpoint, keep func(endpoint) bool) []endpoint {
	var out []endpoint
	for _, e := range eps {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// realServers turns endpoints into masqueraded real servers of weight 1.
func realServers(eps []endpoint) map[state.RSKey]state.RealServer {
	out := make(map[state.RSKey]state.RealServer, len(eps))
	for _, e := range eps {
		out[e.key()] = state.RealServer{Key: e.key(), Weight: 1, Forward: state.ForwardMasq, Terminating: !e.ready}
	}
	return out
}
