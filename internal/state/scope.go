package state

import "net/netip"

// SetMember is a member of a named set.
type SetMember struct {
	Set   string
	Entry SetEntry
}

// Scope names the kernel objects a change may have altered; an incremental
// plan looks at these and nothing else.
type Scope struct {
	Services  map[VSKey]struct{}
	Addresses map[netip.Addr]struct{}
	Members   map[SetMember]struct{}
}

// NewScope returns an empty scope.
func NewScope() *Scope {
	return &Scope{Services: map[VSKey]struct{}{}, Addresses: map[netip.Addr]struct{}{}, Members: map[SetMember]struct{}{}}
}

// Empty reports whether the scope names nothing.
func (s *Scope) Empty() bool {
	return len(s.Services) == 0 && len(s.Addresses) == 0 && len(s.Members) == 0
}

// Merge adds o's objects to s.
func (s *Scope) Merge(o *Scope) {
	for k := range o.Services {
		s.Services[k] = struct{}{}
	}
	for a := range o.Addresses {
		s.Addresses[a] = struct{}{}
	}
	for m := range o.Members {
		s.Members[m] = struct{}{}
	}
}

// Intersects reports whether s and o name a common object.
func (s *Scope) Intersects(o *Scope) bool {
	for k := range o.Services {
		if _, ok := s.Services[k]; ok {
			return true
		}
	}
	for a := range o.Addresses {
		if _, ok := s.Addresses[a]; ok {
			return true
		}
	}
	for m := range o.Members {
		if _, ok := s.Members[m]; ok {
			return true
		}
	}
	return false
}
