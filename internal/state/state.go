package state

import (
	"net/netip"
	"slices"
	"time"
)

// LinkName is the dummy link that holds every address IPVS must treat as local.
const LinkName = "kube-ipvs0"

// Timeouts are IPVS's connection timeouts (`ipvsadm --set tcp tcpfin udp`).
// Zero means "leave the kernel's value".
type Timeouts struct {
	TCP, TCPFin, UDP time.Duration
}

// State is a set of kernel objects ipvs-proxy owns.
type State struct {
	// Link says whether kube-ipvs0 exists (observed) or is wanted (desired).
	Link bool
	// Addresses bound on kube-ipvs0, each as a full-length prefix.
	Addresses map[netip.Addr]struct{}
	// Services are the IPVS virtual servers with their real servers.
	Services map[VSKey]*Service
	// Sets are the sets of the rules backend in use, by name: the ipsets, or
	// the sets of ipvs-proxy's nftables tables (under the names of the ipsets
	// they stand for, see package rules/nft).
	Sets map[string]*Set
	// Rules are the iptables chains and jumps, by family.
	Rules map[Family]RuleSet
	// Tables are ipvs-proxy's nftables tables, by family.
	Tables map[Family]NFTable
	// IPSets are the ipsets when Sets are nftables' (observed by the
	// nftables backend, and by cleanup, which reads both): what the iptables
	// backend left, to be removed.
	IPSets map[string]*Set
	// Sysctls maps a /proc/sys path (e.g. "net/ipv4/vs/conntrack") to its value.
	Sysctls map[string]string
	// Timeouts of IPVS connections.
	Timeouts Timeouts
}

// New returns an empty state.
func New() *State {
	return &State{
		Addresses: map[netip.Addr]struct{}{},
		Services:  map[VSKey]*Service{},
		Sets:      map[string]*Set{},
		Rules:     map[Family]RuleSet{},
		Tables:    map[Family]NFTable{},
		Sysctls:   map[string]string{},
	}
}

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	c := New()
	c.Link, c.Timeouts = s.Link, s.Timeouts
	for a := range s.Addresses {
		c.Addresses[a] = struct{}{}
	}
	for k, svc := range s.Services {
		c.Services[k] = svc.Clone()
	}
	for n, set := range s.Sets {
		c.Sets[n] = set.Clone()
	}
	for f, r := range s.Rules {
		c.Rules[f] = r
	}
	for f, t := range s.Tables {
		c.Tables[f] = t
	}
	if s.IPSets != nil {
		c.IPSets = map[string]*Set{}
		for n, set := range s.IPSets {
			c.IPSets[n] = set.Clone()
		}
	}
	for k, v := range s.Sysctls {
		c.Sysctls[k] = v
	}
	return c
}

// Clone returns a deep copy of the service.
func (s *Service) Clone() *Service {
	c := &Service{VirtualServer: s.VirtualServer, RealServers: make(map[RSKey]RealServer, len(s.RealServers))}
	for k, rs := range s.RealServers {
		c.RealServers[k] = rs
	}
	return c
}

// Clone returns a deep copy of the set.
func (s *Set) Clone() *Set {
	c := &Set{SetSpec: s.SetSpec, Entries: make(map[SetEntry]struct{}, len(s.Entries))}
	for e := range s.Entries {
		c.Entries[e] = struct{}{}
	}
	return c
}

// SortedServices returns the virtual server keys in order.
func (s *State) SortedServices() []VSKey {
	keys := make([]VSKey, 0, len(s.Services))
	for k := range s.Services {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmpBy(VSKey.Less))
	return keys
}

// SortedRealServers returns the service's real servers in order.
func (s *Service) SortedRealServers() []RealServer {
	out := make([]RealServer, 0, len(s.RealServers))
	for _, rs := range s.RealServers {
		out = append(out, rs)
	}
	slices.SortFunc(out, func(a, b RealServer) int { return cmpBy(RSKey.Less)(a.Key, b.Key) })
	return out
}

// SortedAddresses returns the kube-ipvs0 addresses in order.
func (s *State) SortedAddresses() []netip.Addr {
	out := make([]netip.Addr, 0, len(s.Addresses))
	for a := range s.Addresses {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// SortedSetNames returns the set names in order.
func (s *State) SortedSetNames() []string {
	out := make([]string, 0, len(s.Sets))
	for n := range s.Sets {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// SortedEntries returns the set's members in order.
func (s *Set) SortedEntries() []SetEntry {
	out := make([]SetEntry, 0, len(s.Entries))
	for e := range s.Entries {
		out = append(out, e)
	}
	slices.SortFunc(out, cmpBy(SetEntry.Less))
	return out
}

func cmpBy[T any](less func(a, b T) bool) func(a, b T) int {
	return func(a, b T) int {
		switch {
		case less(a, b):
			return -1
		case less(b, a):
			return 1
		}
		return 0
	}
}
