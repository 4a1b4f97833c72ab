package plan

import (
	"net/netip"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Record updates s as if op had succeeded in the kernel: this keeps the
// believed kernel state current between dumps, so that incremental syncs
// need no kernel reads. rulesWanted is the rule set a SyncRules op installed.
func Record(s *state.State, op Op, rulesWanted map[state.Family]state.RuleSet) {
	switch op.Kind {
	case EnsureLink:
		s.Link = true
	case DeleteLink:
		s.Link = false
		s.Addresses = map[netip.Addr]struct{}{}
	case SetSysctl:
		s.Sysctls[op.Sysctl] = op.Value
	case SetTimeouts:
		t := op.Timeouts
		if t.TCP > 0 {
			s.Timeouts.TCP = t.TCP
		}
		if t.TCPFin > 0 {
			s.Timeouts.TCPFin = t.TCPFin
		}
		if t.UDP > 0 {
			s.Timeouts.UDP = t.UDP
		}
	case CreateSet:
		s.Sets[op.Set.Name] = state.NewSet(op.Set)
	case DestroySet:
		if _, ok := s.IPSets[op.Set.Name]; ok {
			delete(s.IPSets, op.Set.Name) // a leftover of the iptables backend
		} else {
			delete(s.Sets, op.Set.Name)
		}
	case NFTCreateSet:
		s.Sets[op.Set.Name] = state.NewSet(op.Set)
	case NFTAddElement, NFTDelElement, NFTSyncChain, NFTDeleteChain, NFTDeleteSet, NFTDeleteTable:
		recordNFT(s, op)
	case AddEntry:
		if set := s.Sets[op.Set.Name]; set != nil {
			if op.Replace {
				for e := range set.Entries {
					if e.Key() == op.Entry.Key() {
						delete(set.Entries, e)
					}
				}
			}
			set.Entries[op.Entry] = struct{}{}
		}
	case DelEntry:
		if set := s.Sets[op.Set.Name]; set != nil {
			delete(set.Entries, op.Entry)
		}
	case AddAddress:
		s.Addresses[op.Addr] = struct{}{}
	case DelAddress:
		delete(s.Addresses, op.Addr)
	case AddVS:
		s.Services[op.VS.Key] = &state.Service{VirtualServer: op.VS, RealServers: map[state.RSKey]state.RealServer{}}
	case EditVS:
		if svc := s.Services[op.VS.Key]; svc != nil {
			svc.VirtualServer = op.VS
		}
	case DelVS:
		delete(s.Services, op.VS.Key)
	case AddRS, EditRS:
		if svc := s.Services[op.VS.Key]; svc != nil {
			rs := op.RS
			if old, ok := svc.RealServers[rs.Key]; ok {
				rs.ActiveConns, rs.InactiveConns = old.ActiveConns, old.InactiveConns
			}
			svc.RealServers[rs.Key] = rs
		}
	case DelRS:
		if svc := s.Services[op.VS.Key]; svc != nil {
			delete(svc.RealServers, op.RS.Key)
		}
	case SyncRules:
		s.Rules[op.Family] = rulesWanted[op.Family]
	case DeleteRules:
		delete(s.Rules, op.Family)
	}
}

// recordNFT records an nftables operation. Tables are replaced, not changed
// in place: clones of a state share them.
func recordNFT(s *state.State, op Op) {
	switch op.Kind {
	case NFTAddElement:
		if set := s.Sets[op.Set.Name]; set != nil {
			set.Entries[op.Entry] = struct{}{}
		}
	case NFTDelElement:
		if set := s.Sets[op.Set.Name]; set != nil {
			delete(set.Entries, op.Entry)
		}
	case NFTDeleteTable:
		delete(s.Tables, op.Family)
	case NFTSyncChain, NFTDeleteChain, NFTDeleteSet:
		t := s.Tables[op.Family]
		chains := make([]state.NFTChain, 0, len(t.Chains)+1)
		replaced := false
		for _, c := range t.Chains {
			switch {
			case c.Name != op.Chain.Name || op.Kind == NFTDeleteSet:
				chains = append(chains, c)
			case op.Kind == NFTSyncChain:
				chains, replaced = append(chains, op.Chain), true
			}
		}
		if op.Kind == NFTSyncChain && !replaced {
			chains = append(chains, op.Chain)
		}
		var others []string
		for _, name := range t.OtherSets {
			if op.Kind != NFTDeleteSet || name != op.NFTName {
				others = append(others, name)
			}
		}
		s.Tables[op.Family] = state.NFTable{Chains: chains, OtherSets: others}
	}
}
