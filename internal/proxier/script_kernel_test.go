package proxier

import (
	"fmt"
	"net/netip"
	"strconv"

	"rsc.io/script"

	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// vsKeyNone refuses nothing.
var vsKeyNone state.VSKey

// tcpKey parses "VIP:PORT" as a TCP virtual server.
func tcpKey(args []string) (state.VSKey, error) {
	if len(args) != 1 {
		return state.VSKey{}, script.ErrUsage
	}
	ap, err := netip.ParseAddrPort(args[0])
	if err != nil {
		return state.VSKey{}, err
	}
	return state.VSKey{Proto: state.TCP, Addr: ap.Addr(), Port: ap.Port()}, nil
}

// rsKey parses "RIP:PORT".
func rsKey(s string) (state.RSKey, error) {
	ap, err := netip.ParseAddrPort(s)
	return state.RSKey{Addr: ap.Addr(), Port: ap.Port()}, err
}

func (h *scriptHarness) conns(args ...string) (string, error) {
	if len(args) != 4 {
		return "", script.ErrUsage
	}
	vs, err := tcpKey(args[:1])
	if err != nil {
		return "", err
	}
	rs, err := rsKey(args[1])
	if err != nil {
		return "", err
	}
	active, err1 := strconv.ParseUint(args[2], 10, 32)
	inactive, err2 := strconv.ParseUint(args[3], 10, 32)
	if err1 != nil || err2 != nil {
		return "", script.ErrUsage
	}
	h.fk.IPVS.SetConns(vs, rs, uint32(active), uint32(inactive))
	return "", nil
}

// tamper changes the fake kernel directly, as an administrator or another
// program would.
func (h *scriptHarness) tamper(args ...string) (string, error) {
	if len(args) < 2 {
		return "", script.ErrUsage
	}
	var err error
	switch args[0] {
	case "del-rs":
		err = h.tamperIPVS(args[1:], kernel.DelDest)
	case "add-vs":
		err = h.tamperIPVS(args[1:], kernel.AddService)
	case "del-address":
		var a netip.Addr
		if a, err = netip.ParseAddr(args[1]); err == nil {
			err = h.fk.Link.Exec([]kernel.AddrOp{{Addr: a}})[0]
		}
	case "del-member":
		err = h.delMember(args[1:])
	case "remark":
		var mark uint64
		if mark, err = strconv.ParseUint(args[1], 10, 32); err == nil {
			err = h.remark(uint32(mark))
		}
	default:
		return "", script.ErrUsage
	}
	return "", err
}

// tamperIPVS runs "VIP:PORT RIP:PORT" (DelDest) or "VIP:PORT SCHED" (AddService).
func (h *scriptHarness) tamperIPVS(args []string, cmd kernel.IPVSCmd) error {
	if len(args) != 2 {
		return script.ErrUsage
	}
	k, err := tcpKey(args[:1])
	if err != nil {
		return err
	}
	op := kernel.IPVSOp{Cmd: cmd, VS: state.VirtualServer{Key: k}}
	if cmd == kernel.AddService {
		op.VS.Scheduler = args[1]
	} else if op.RS.Key, err = rsKey(args[1]); err != nil {
		return err
	}
	return h.fk.IPVS.Exec([]kernel.IPVSOp{op})[0]
}

// delMember deletes "SET MEMBER", the member as ipset save writes it.
func (h *scriptHarness) delMember(args []string) error {
	if len(args) != 2 {
		return script.ErrUsage
	}
	sets, _ := h.fk.IPSet.List()
	set := sets[args[0]]
	if set == nil {
		return fmt.Errorf("no set %s", args[0])
	}
	for e := range set.Entries {
		if e.Format(set.Type) == args[1] {
			return h.fk.IPSet.Exec([]kernel.SetOp{{Set: set.SetSpec, Entry: e}})[0]
		}
	}
	return fmt.Errorf("no member %s in %s", args[1], args[0])
}

// remark moves every firewall-mark virtual server, and the in-cluster
// marks set's members, to the given mark, as an older daemon that chose
// other marks would have left them.
func (h *scriptHarness) remark(mark uint32) error {
	ipvs, _ := h.fk.IPVS.Dump()
	var ops []kernel.IPVSOp
	for k, old := range ipvs {
		if k.FWMark == 0 {
			continue
		}
		moved := old.VirtualServer
		fam := state.IPv4
		if k.Addr.Is6() {
			fam = state.IPv6
		}
		moved.Key = state.FWMarkKey(mark, fam)
		ops = append(ops, kernel.IPVSOp{Cmd: kernel.DelService, VS: old.VirtualServer}, kernel.IPVSOp{Cmd: kernel.AddService, VS: moved})
		for _, rs := range old.SortedRealServers() {
			ops = append(ops, kernel.IPVSOp{Cmd: kernel.AddDest, VS: moved, RS: rs})
		}
	}
	if len(ops) == 0 {
		return fmt.Errorf("no firewall-mark virtual server")
	}
	sets, _ := h.fk.IPSet.List()
	set := sets[desired.SetExternalLocalMarks]
	var setOps []kernel.SetOp
	for e := range set.Entries {
		e.Mark = mark
		setOps = append(setOps, kernel.SetOp{Add: true, Replace: true, Set: set.SetSpec, Entry: e})
	}
	for _, err := range append(h.fk.IPVS.Exec(ops), h.fk.IPSet.Exec(setOps)...) {
		if err != nil {
			return err
		}
	}
	return nil
}
