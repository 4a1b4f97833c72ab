package apply

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Observe reads what the kernel holds of the objects want mentions: one IPVS
// dump, one address list, one ipset list, one iptables-save per family,
// ipvs-proxy's nftables tables, the sysctls and timeouts want sets. With all
// set, both families' rules are read (for cleanup). A failed read fails the
// whole observation: nothing may be pruned on the strength of a partial view.
//
// When want has nftables tables (the nftables backend), and with all, the
// sets observed are those of the tables, the ipsets go to IPSets and the
// iptables rules are read only if the iptables tools are there: both are
// what the iptables backend left.
//
// The four big reads are independent and run at once: at 10,000 Services
// each takes from half a second to seconds on an emulated CPU.
func Observe(k kernel.Kernel, want *state.State, all bool) (*state.State, error) {
	return ObserveTimed(k, want, all, nil)
}

// Read times of ObserveTimed, by what was read.
const (
	ReadIPVS      = "ipvs"
	ReadAddresses = "addresses"
	ReadIPSet     = "ipset"
	ReadRules     = "rules"
)

// ObserveTimed is Observe that also says, in took (if not nil), how long each
// of the parallel reads took (keys ReadIPVS, ReadAddresses, ReadIPSet,
// ReadRules).
func ObserveTimed(k kernel.Kernel, want *state.State, all bool, took map[string]time.Duration) (*state.State, error) {
	s := state.New()
	var wg sync.WaitGroup
	var ipvsErr, linkErr, setErr error
	var addrs []netip.Addr
	var times [4]time.Duration
	timed := func(i int, read func()) {
		start := time.Now()
		read()
		times[i] = time.Since(start)
	}
	wg.Add(3)
	go func() { defer wg.Done(); timed(0, func() { s.Services, ipvsErr = k.IPVS.Dump() }) }()
	go func() { defer wg.Done(); timed(1, func() { s.Link, addrs, linkErr = k.Link.Addresses() }) }()
	go func() { defer wg.Done(); timed(2, func() { s.Sets, setErr = k.IPSet.List() }) }()
	nftMode := len(want.Tables) > 0
	var saved map[state.Family]state.RuleSet
	var rulesErr, nftErr error
	var tables map[state.Family]state.NFTable
	var nftSets map[string]*state.Set
	timed(3, func() {
		saved, rulesErr = saveRules(k, want, all || nftMode, all || nftMode)
		tables, nftSets, nftErr = readTables(k)
	})
	wg.Wait()
	if took != nil {
		for i, name := range []string{ReadIPVS, ReadAddresses, ReadIPSet, ReadRules} {
			took[name] = times[i]
		}
	}
	switch {
	case ipvsErr != nil:
		return nil, fmt.Errorf("dump IPVS: %w", ipvsErr)
	case linkErr != nil:
		return nil, fmt.Errorf("list %s addresses: %w", state.LinkName, linkErr)
	case setErr != nil:
		return nil, fmt.Errorf("list ipsets: %w", setErr)
	case rulesErr != nil:
		return nil, rulesErr
	case nftErr != nil:
		return nil, fmt.Errorf("read nftables: %w", nftErr)
	}
	s.Tables = tables
	if nftMode || all {
		s.IPSets, s.Sets = s.Sets, nftSets
	}
	for _, a := range addrs {
		s.Addresses[a] = struct{}{}
	}
	s.Rules = saved
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
		var err error
		if s.Timeouts, err = k.IPVS.Timeouts(); err != nil {
			errs = append(errs, fmt.Errorf("read IPVS timeouts: %w", err))
		}
	}
	return s, errors.Join(errs...)
}

// saveRules reads the rules of the families want has rules for (both with
// all). With optional, a node without the iptables tools has no rules.
func saveRules(k kernel.Kernel, want *state.State, all, optional bool) (map[state.Family]state.RuleSet, error) {
	out := map[state.Family]state.RuleSet{}
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		if _, ok := want.Rules[f]; !ok && !all {
			continue
		}
		save, err := k.IPTables.Save(f)
		if err != nil {
			if (all && f == state.IPv6) || (optional && errors.Is(err, exec.ErrNotFound)) {
				continue // no ip6tables (or no iptables) on this node: nothing of ours there
			}
			return nil, fmt.Errorf("iptables-save (IPv%d): %w", f, err)
		}
		out[f] = rules.Parse(save)
	}
	return out, nil
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
