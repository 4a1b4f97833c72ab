// Package status reports what ipvs-proxy programmed and how it is used:
// `ipvs-proxy status`, the daemon's /status endpoint, and the per-Service
// traffic metrics from IPVS's counters.
package status

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Report is the status of one node.
type Report struct {
	Node    string `json:"node,omitempty"`
	Healthy bool   `json:"healthy"`
	// Unhealthy says why the node is not healthy ("" when it is).
	Unhealthy      string          `json:"unhealthy,omitempty"`
	LastSync       time.Time       `json:"lastSync"`
	VirtualServers []VirtualServer `json:"virtualServers"`
	// Problems are Services that could not be programmed as written, and why.
	Problems []Problem `json:"problems,omitempty"`
}

// VirtualServer is one IPVS service, annotated with the Service port it serves.
type VirtualServer struct {
	Protocol string `json:"protocol"`
	Address  string `json:"address"`
	Port     uint16 `json:"port"`
	// FWMark is the mark of a firewall-mark virtual server (Protocol "FWM";
	// Address is then its family's unspecified address).
	FWMark    uint32 `json:"fwmark,omitempty"`
	Service   string `json:"service"`
	PortName  string `json:"portName"`
	Type      string `json:"type"`
	Scheduler string `json:"scheduler"`
	// Flags are scheduler flags as ipvsadm names them (mh-port, sh-fallback, ...).
	Flags       []string     `json:"flags,omitempty"`
	Persistence *Persistence `json:"persistence,omitempty"`
	Stats       Stats        `json:"stats"`
	RealServers []RealServer `json:"realServers"`
	// InKernel is false when the virtual server is wanted but missing (a sync is pending or failing).
	InKernel bool `json:"inKernel"`
}

// Persistence is ClientIP session affinity.
type Persistence struct {
	TimeoutSeconds uint32 `json:"timeoutSeconds"`
	NetmaskBits    int    `json:"netmaskBits"`
}

// Stats are traffic counters since the virtual server was created.
type Stats struct {
	Conns      uint64 `json:"conns"`
	InPackets  uint64 `json:"inPackets"`
	OutPackets uint64 `json:"outPackets"`
	InBytes    uint64 `json:"inBytes"`
	OutBytes   uint64 `json:"outBytes"`
}

// Real server states.
const (
	StateReady       = "ready"       // a ready endpoint
	StateTerminating = "terminating" // a serving terminating endpoint, used as kube-proxy's fallback
	StateDraining    = "draining"    // a removed endpoint kept at weight 0 until its connections end
	StateMissing     = "missing"     // wanted but not in the kernel yet
)

// RealServer is one backend of a virtual server.
type RealServer struct {
	Address       string `json:"address"`
	Port          uint16 `json:"port"`
	Weight        int32  `json:"weight"`
	State         string `json:"state"`
	ActiveConns   uint32 `json:"activeConns"`
	InactiveConns uint32 `json:"inactiveConns"`
}

// Problem is a Service that could not be programmed as written.
type Problem struct {
	Service string   `json:"service"`
	Errors  []string `json:"errors"`
}

// Build annotates what the proxier wants with what the kernel holds: each
// wanted virtual server (those filter accepts; nil accepts all) with its
// real servers' weights, states and connections, and its counters.
func Build(node string, v *proxier.View, kernel map[state.VSKey]*state.Service, stats map[state.VSKey]state.Stats, filter func(state.Origin) bool) *Report {
	r := &Report{Node: node, Healthy: v.Health.Healthy, LastSync: v.Health.LastUpdated, VirtualServers: []VirtualServer{}}
	switch h := v.Health; {
	case h.Healthy:
	case !h.Started:
		r.Unhealthy = "no full sync has succeeded yet"
	case !h.NodeEligible:
		r.Unhealthy = "not eligible for load balancer traffic: " + h.NotEligibleWhy
	default:
		r.Unhealthy = "changes have waited since " + h.QueuedSince.UTC().Format(time.RFC3339) + ": " + h.LastError
	}
	keys := make([]state.VSKey, 0, len(v.Services))
	for k, s := range v.Services {
		if filter == nil || filter(s.Origin) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b state.VSKey) int {
		oa, ob := v.Services[a].Origin, v.Services[b].Origin
		if c := strings.Compare(oa.Service+":"+oa.Port, ob.Service+":"+ob.Port); c != 0 {
			return c
		}
		if c := kindRank[oa.Kind] - kindRank[ob.Kind]; c != 0 {
			return c
		}
		if a.Less(b) {
			return -1
		}
		return 1
	})
	for _, k := range keys {
		want := v.Services[k]
		have := kernel[k]
		vs := VirtualServer{
			Protocol: strings.ToUpper(k.Proto.String()), Address: k.Addr.String(), Port: k.Port, FWMark: k.FWMark,
			Service: want.Origin.Service, PortName: want.Origin.Port, Type: string(want.Origin.Kind),
			Scheduler: want.Scheduler, Flags: FlagNames(want.VirtualServer), InKernel: have != nil,
		}
		if k.FWMark != 0 {
			vs.Protocol = "FWM"
		}
		if have != nil {
			vs.Scheduler, vs.Flags = have.Scheduler, FlagNames(have.VirtualServer)
		}
		if want.Flags&state.FlagPersistent != 0 {
			bits := want.PersistenceBits
			if bits == 0 {
				bits = k.Addr.BitLen()
			}
			vs.Persistence = &Persistence{TimeoutSeconds: want.Timeout, NetmaskBits: bits}
		}
		if st, ok := stats[k]; ok {
			vs.Stats = Stats(st)
		}
		vs.RealServers = realServers(want, have)
		r.VirtualServers = append(r.VirtualServers, vs)
	}
	names := make([]string, 0, len(v.Errors))
	for svc := range v.Errors {
		if filter == nil || filter(state.Origin{Service: svc}) {
			names = append(names, svc)
		}
	}
	sort.Strings(names)
	for _, svc := range names {
		r.Problems = append(r.Problems, Problem{Service: svc, Errors: v.Errors[svc]})
	}
	return r
}

// kindRank orders a Service port's virtual servers in a report.
var kindRank = map[state.Kind]int{state.KindClusterIP: 0, state.KindExternalIP: 1, state.KindLoadBalancer: 2, state.KindNodePort: 3, state.KindInCluster: 4}

func realServers(want, have *state.Service) []RealServer {
	var out []RealServer
	seen := map[state.RSKey]bool{}
	if have != nil {
		for _, rs := range have.SortedRealServers() {
			seen[rs.Key] = true
			st := StateReady
			if w, ok := want.RealServers[rs.Key]; !ok {
				st = StateDraining
			} else if w.Terminating {
				st = StateTerminating
			}
			out = append(out, RealServer{Address: rs.Key.Addr.String(), Port: rs.Key.Port, Weight: rs.Weight, State: st,
				ActiveConns: rs.ActiveConns, InactiveConns: rs.InactiveConns})
		}
	}
	for _, rs := range want.SortedRealServers() {
		if !seen[rs.Key] {
			out = append(out, RealServer{Address: rs.Key.Addr.String(), Port: rs.Key.Port, Weight: rs.Weight, State: StateMissing})
		}
	}
	return out
}

// FlagNames names a virtual server's scheduler flags like ipvsadm does.
func FlagNames(v state.VirtualServer) []string {
	s := v.Ipvsadm()
	_, after, ok := strings.Cut(s, " -b ")
	if !ok {
		return nil
	}
	f, _, _ := strings.Cut(after, " ")
	return strings.Split(f, ",")
}
