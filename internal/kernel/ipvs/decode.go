package ipvs

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"golang.org/x/sys/unix"
)

// nestedAttrs returns the attributes inside the top-level attribute typ of a
// generic netlink message body (the bytes after the netlink header).
func nestedAttrs(data []byte, typ uint16) ([]nlbatch.Attr, error) {
	if len(data) < genlHeaderLen {
		return nil, fmt.Errorf("%w: generic netlink message of %d bytes", nlbatch.ErrMalformed, len(data))
	}
	top, err := nlbatch.ParseAttrs(data[genlHeaderLen:])
	if err != nil {
		return nil, err
	}
	for _, a := range top {
		if a.Type == typ {
			return nlbatch.ParseAttrs(a.Value)
		}
	}
	return nil, fmt.Errorf("%w: no attribute %d in the message", nlbatch.ErrMalformed, typ)
}

// parseService decodes one message of a service dump. A firewall-mark
// service has no protocol, address and port: its key is the mark and the
// family's unspecified address (state.FWMarkKey).
func parseService(data []byte) (vs state.VirtualServer, ok bool, err error) {
	attrs, err := nestedAttrs(data, cmdAttrService)
	if err != nil {
		return vs, false, err
	}
	var af uint16
	var mark uint32
	var addr, netmask []byte
	for _, a := range attrs {
		var good bool
		switch a.Type {
		case svcAttrAF:
			af, good = a.U16()
		case svcAttrProtocol:
			var p uint16
			p, good = a.U16()
			vs.Key.Proto = state.Protocol(p)
		case svcAttrAddr:
			addr, good = a.Value, true
		case svcAttrPort:
			vs.Key.Port, good = a.BE16()
		case svcAttrFWMark:
			mark, good = a.U32()
		case svcAttrSchedName:
			vs.Scheduler, good = a.String(), true
		case svcAttrFlags:
			// struct ip_vs_flags: the flags, then a mask the kernel sets to ~0.
			if good = len(a.Value) == 8; good {
				vs.Flags = binary.NativeEndian.Uint32(a.Value[0:4]) &^ svcFlagHashed
			}
		case svcAttrTimeout:
			vs.Timeout, good = a.U32()
		case svcAttrNetmask:
			netmask, good = a.Value, len(a.Value) == 4
		default:
			good = true // statistics and newer attributes
		}
		if !good {
			return vs, false, fmt.Errorf("%w: service attribute %d of %d bytes", nlbatch.ErrMalformed, a.Type, len(a.Value))
		}
	}
	switch {
	case mark != 0 && af == unix.AF_INET6:
		vs.Key = state.FWMarkKey(mark, state.IPv6)
	case mark != 0:
		vs.Key = state.FWMarkKey(mark, state.IPv4)
	default:
		if vs.Key.Addr, err = parseAddr(af, addr); err != nil {
			return vs, false, err
		}
	}
	if netmask != nil {
		vs.PersistenceBits = decodeNetmask(af, netmask)
	}
	return vs, true, nil
}

// decodeNetmask turns the kernel's netmask into a prefix length: an IPv4
// mask counts its leading ones, an IPv6 one is the length itself.
func decodeNetmask(af uint16, b []byte) int {
	if af == unix.AF_INET6 {
		return int(binary.NativeEndian.Uint32(b))
	}
	return bits.LeadingZeros32(^binary.BigEndian.Uint32(b))
}

// parseDest decodes one message of a destination dump.
func parseDest(data []byte, svcAF uint16) (state.RealServer, error) {
	var rs state.RealServer
	attrs, err := nestedAttrs(data, cmdAttrDest)
	if err != nil {
		return rs, err
	}
	af := svcAF
	var addr []byte
	for _, a := range attrs {
		var good bool
		switch a.Type {
		case destAttrAddr:
			addr, good = a.Value, true
		case destAttrPort:
			rs.Key.Port, good = a.BE16()
		case destAttrAddrFamily:
			af, good = a.U16()
		case destAttrFwdMethod:
			var f uint32
			f, good = a.U32()
			rs.Forward = f & connFwdMask
		case destAttrWeight:
			var w uint32
			w, good = a.U32()
			rs.Weight = int32(w)
		case destAttrActiveConns:
			rs.ActiveConns, good = a.U32()
		case destAttrInactConns:
			rs.InactiveConns, good = a.U32()
		default:
			good = true
		}
		if !good {
			return rs, fmt.Errorf("%w: destination attribute %d of %d bytes", nlbatch.ErrMalformed, a.Type, len(a.Value))
		}
	}
	rs.Key.Addr, err = parseAddr(af, addr)
	return rs, err
}

// parseAddr reads a union nf_inet_addr: 16 bytes, IPv4 in the first 4.
func parseAddr(af uint16, b []byte) (netip.Addr, error) {
	switch {
	case af == unix.AF_INET && len(b) >= 4:
		return netip.AddrFrom4([4]byte(b[:4])), nil
	case af == unix.AF_INET6 && len(b) >= 16:
		return netip.AddrFrom16([16]byte(b[:16])), nil
	}
	return netip.Addr{}, fmt.Errorf("%w: address of %d bytes for family %d", nlbatch.ErrMalformed, len(b), af)
}

// parseConfig decodes the reply to IPVS_CMD_GET_CONFIG.
func parseConfig(data []byte) (state.Timeouts, error) {
	var t state.Timeouts
	if len(data) < genlHeaderLen {
		return t, fmt.Errorf("%w: generic netlink message of %d bytes", nlbatch.ErrMalformed, len(data))
	}
	attrs, err := nlbatch.ParseAttrs(data[genlHeaderLen:])
	if err != nil {
		return t, err
	}
	for _, a := range attrs {
		var d *time.Duration
		switch a.Type {
		case cmdAttrTimeoutTCP:
			d = &t.TCP
		case cmdAttrTimeoutTCPFin:
			d = &t.TCPFin
		case cmdAttrTimeoutUDP:
			d = &t.UDP
		default:
			continue
		}
		s, ok := a.U32()
		if !ok {
			return t, fmt.Errorf("%w: timeout attribute %d of %d bytes", nlbatch.ErrMalformed, a.Type, len(a.Value))
		}
		*d = time.Duration(s) * time.Second
	}
	return t, nil
}
