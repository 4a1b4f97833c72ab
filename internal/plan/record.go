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
		delete(s.Sets, op.Set.Name)
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
