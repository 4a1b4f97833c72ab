package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"golang.org/x/sys/unix"
)

// The IPVS generic netlink protocol, include/uapi/linux/ip_vs.h.
const (
	genlHeaderLen = 4 // struct genlmsghdr: cmd, version, reserved
	genlVersion   = 1 // IPVS_GENL_VERSION

	cmdNewService = 1
	cmdSetService = 2
	cmdDelService = 3
	cmdGetService = 4
	cmdNewDest    = 5
	cmdSetDest    = 6
	cmdDelDest    = 7
	cmdGetDest    = 8
	cmdSetConfig  = 12
	cmdGetConfig  = 13

	cmdAttrService       = 1
	cmdAttrDest          = 2
	cmdAttrTimeoutTCP    = 4
	cmdAttrTimeoutTCPFin = 5
	cmdAttrTimeoutUDP    = 6

	svcAttrAF        = 1
	svcAttrProtocol  = 2
	svcAttrAddr      = 3
	svcAttrPort      = 4
	svcAttrFWMark    = 5
	svcAttrSchedName = 6
	svcAttrFlags     = 7
	svcAttrTimeout   = 8
	svcAttrNetmask   = 9

	destAttrAddr               = 1
	destAttrPort               = 2
	destAttrFwdMethod          = 3
	destAttrWeight             = 4
	destAttrUThresh            = 5
	destAttrLThresh            = 6
	destAttrActiveConns        = 7
	destAttrInactConns         = 8
	destAttrAddrFamily         = 11
	connFwdMask                = 0x7 // IP_VS_CONN_F_FWD_MASK
	svcFlagHashed       uint32 = 0x2 // IP_VS_SVC_F_HASHED, kernel bookkeeping
)

// errEncode is wrapped by the error of an op that could not be encoded; it is
// never sent.
var errEncode = errors.New("cannot encode IPVS request")

// Encode encodes one write as the generic netlink request Exec sends, for
// the IPVS family id family (for the benchmark's floor loader).
func Encode(family uint16, op kernel.IPVSOp) ([]byte, error) { return encodeOp(family, op) }

// encodeOp encodes one write as its generic netlink request.
func encodeOp(family uint16, op kernel.IPVSOp) ([]byte, error) {
	var cmd uint8
	fullService, dest, fullDest := false, false, false
	switch op.Cmd {
	case kernel.AddService:
		cmd, fullService = cmdNewService, true
	case kernel.EditService:
		cmd, fullService = cmdSetService, true
	case kernel.DelService:
		cmd = cmdDelService
	case kernel.AddDest:
		cmd, dest, fullDest = cmdNewDest, true, true
	case kernel.EditDest:
		cmd, dest, fullDest = cmdSetDest, true, true
	case kernel.DelDest:
		cmd, dest = cmdDelDest, true
	default:
		return nil, fmt.Errorf("%w: unknown command %d", errEncode, op.Cmd)
	}
	m := nlbatch.NewMessage(family, 0).Header([]byte{cmd, genlVersion, 0, 0})
	if err := appendService(m, op.VS, fullService); err != nil {
		return nil, err
	}
	if dest {
		if err := appendDest(m, op.RS, fullDest); err != nil {
			return nil, err
		}
	}
	return m.Bytes(), nil
}

// appendService adds the IPVS_CMD_ATTR_SERVICE nest: the key, and with full
// the configuration (add and edit need all of it).
func appendService(m *nlbatch.Message, vs state.VirtualServer, full bool) error {
	addr := vs.Key.Addr.Unmap()
	if !addr.IsValid() {
		return fmt.Errorf("%w: virtual server without an address", errEncode)
	}
	m.Begin(cmdAttrService)
	m.U16(svcAttrAF, afOf(addr))
	if vs.Key.FWMark != 0 {
		m.U32(svcAttrFWMark, vs.Key.FWMark) // keyed by family and mark only
	} else {
		m.U16(svcAttrProtocol, uint16(vs.Key.Proto))
		m.Attr(svcAttrAddr, addr.AsSlice())
		m.BE16(svcAttrPort, vs.Key.Port)
	}
	if full {
		if vs.Scheduler == "" {
			return fmt.Errorf("%w: virtual server %s without a scheduler", errEncode, vs.Key)
		}
		netmask, err := encodeNetmask(addr, vs)
		if err != nil {
			return err
		}
		var timeout uint32
		if vs.Flags&state.FlagPersistent != 0 {
			timeout = vs.Timeout
		}
		// struct ip_vs_flags {flags, mask}: only the managed bits change.
		flags := binary.NativeEndian.AppendUint32(nil, vs.Flags&state.ManagedFlags)
		flags = binary.NativeEndian.AppendUint32(flags, state.ManagedFlags)
		m.String(svcAttrSchedName, vs.Scheduler)
		m.Attr(svcAttrFlags, flags)
		m.U32(svcAttrTimeout, timeout)
		m.Attr(svcAttrNetmask, netmask)
	}
	m.End()
	return nil
}

// encodeNetmask gives the persistence netmask as the kernel takes it: for
// IPv4 the mask itself in network order (0xffffffff for /32), for IPv6 the
// prefix length as a host-order u32. Without persistence it is a single
// address.
func encodeNetmask(addr netip.Addr, vs state.VirtualServer) ([]byte, error) {
	bits := addr.BitLen()
	if vs.Flags&state.FlagPersistent != 0 && vs.PersistenceBits != 0 {
		bits = vs.PersistenceBits
	}
	if bits < 1 || bits > addr.BitLen() {
		return nil, fmt.Errorf("%w: persistence netmask /%d for %s", errEncode, bits, vs.Key)
	}
	if addr.Is6() {
		return binary.NativeEndian.AppendUint32(nil, uint32(bits)), nil
	}
	return binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-bits)), nil
}

// appendDest adds the IPVS_CMD_ATTR_DEST nest: the key, and with full the
// configuration (masquerading, thresholds 0).
func appendDest(m *nlbatch.Message, rs state.RealServer, full bool) error {
	addr := rs.Key.Addr.Unmap()
	if !addr.IsValid() {
		return fmt.Errorf("%w: real server without an address", errEncode)
	}
	m.Begin(cmdAttrDest)
	m.Attr(destAttrAddr, addr.AsSlice())
	m.BE16(destAttrPort, rs.Key.Port)
	m.U16(destAttrAddrFamily, afOf(addr))
	if full {
		m.U32(destAttrFwdMethod, rs.Forward&connFwdMask)
		m.U32(destAttrWeight, uint32(rs.Weight))
		m.U32(destAttrUThresh, 0)
		m.U32(destAttrLThresh, 0)
	}
	m.End()
	return nil
}

// encodeDestDump asks for the real servers of one virtual server.
func encodeDestDump(family uint16, key state.VSKey) ([]byte, error) {
	m := nlbatch.NewMessage(family, unix.NLM_F_DUMP).Header([]byte{cmdGetDest, genlVersion, 0, 0})
	if err := appendService(m, state.VirtualServer{Key: key}, false); err != nil {
		return nil, err
	}
	return m.Bytes(), nil
}

func afOf(addr netip.Addr) uint16 {
	if addr.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}
