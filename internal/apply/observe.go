package apply

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Observe reads what the kernel holds of the objects want mentions: one IPVS
// dump, one address list, one ipset list, one iptables-save per family, the
// sysctls and timeouts want sets. With all set, both families' rules are read
// (for cleanup). A failed read fails the whole observation: nothing may be
// pruned on the strength of a partial view.
func Observe(k kernel.Kernel, want *state.State, all bool) (*state.State, error) {
	s := state.New()
	var err error
	if s.Services, err = k.IPVS.Dump(); err != nil {
		return nil, fmt.Errorf("dump IPVS: %w", err)
	}
	exists, addrs, err := k.Link.Addresses()
	if err != nil {
		return nil, fmt.Errorf("list %s addresses: %w", state.LinkName, err)
	}
	s.Link = exists
	for _, a := range addrs {
		s.Addresses[a] = struct{}{}
	}
	if s.Sets, err = k.IPSet.List(); err != nil {
		return nil, fmt.Errorf("list ipsets: %w", err)
	}
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		if _, ok := want.Rules[f]; !ok && !all {
			continue
		}
		save, err := k.IPTables.Save(f)
		if err != nil {
			if all && f == state.IPv6 {
				continue // no ip6tables on this node: nothing of ours there
			}
			return nil, fmt.Errorf("iptables-save (IPv%d): %w", f, err)
		}
		s.Rules[f] = rules.Parse(save)
	}
	var errs []error
	for key := range want.Sysctls {
		v, err := k.Sysctl.Get(key)
		if err != nil {
			errs = append(errs, fmt.Errorf("read sysctl %s: %w", key, err))
			continue
		}
		s.Sysctls[key] = v
	}
	if t := want.Timeouts; t.TCP > 0 || t.TCPFin > 0 || t.UDP > 0 {
		if s.Timeouts, err = k.IPVS.Timeouts(); err != nil {
			errs = append(errs, fmt.Errorf("read IPVS timeouts: %w", err))
		}
	}
	return s, errors.Join(errs...)
}

// RefreshDestinations replaces the real servers of the given virtual servers
// in s with a fresh dump (connection counts included).
func RefreshDestinations(k kernel.Kernel, s *state.State, keys []state.VSKey) error {
	slices.SortFunc(keys, func(a, b state.VSKey) int {
		if a.Less(b) {
			return -1
		}
		if b.Less(a) {
			return 1
		}
		return 0
	})
	fresh, err := k.IPVS.DumpDestinations(keys)
	if err != nil {
		return fmt.Errorf("dump IPVS destinations: %w", err)
	}
	for _, key := range keys {
		svc := s.Services[key]
		if svc == nil {
			continue
		}
		if rss, ok := fresh[key]; ok {
			svc.RealServers = rss
		} else {
			delete(s.Services, key) // gone from the kernel
		}
	}
	return nil
}
