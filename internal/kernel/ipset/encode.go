package ipset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Attribute flags ipset insists on: nested attributes carry NLA_F_NESTED,
// integers NLA_F_NET_BYTEORDER (it answers IPSET_ERR_PROTOCOL otherwise).
const (
	nested   = nl.NLA_F_NESTED
	netOrder = nl.NLA_F_NET_BYTEORDER
)

// Create parameters: kube-proxy's hash size, a maximum far above its 65536,
// and every port for bitmap:port.
const (
	hashSize    = 1024
	maxElements = 1 << 20
)

// revisions are the set type revisions Create asks for: the ones with
// skbinfo support (the newest of Linux 3.19 to 5.x, also in Debian 12's 6.1
// and what the ipset 7 tool lists). They enable no optional feature.
var revisions = map[state.SetType]uint8{
	state.HashIP:        4,
	state.HashIPPort:    5,
	state.HashIPPortIP:  5,
	state.HashIPPortNet: 7,
	state.HashNet:       6,
	state.BitmapPort:    3,
}

// errEncode is wrapped by the error of a request that could not be encoded;
// it is never sent.
var errEncode = errors.New("cannot encode ipset request")

// newRequest starts an ipset request: the netfilter header and the protocol.
func newRequest(cmd uint16, flags uint16, family uint8) *nlbatch.Message {
	return nlbatch.NewMessage(unix.NFNL_SUBSYS_IPSET<<8|cmd, flags).
		Header([]byte{family, unix.NFNETLINK_V0, 0, 0}).
		U8(nl.IPSET_ATTR_PROTOCOL, nl.IPSET_PROTOCOL)
}

// encodeCreate encodes `ipset create NAME TYPE family inet|inet6 hashsize
// 1024 maxelem 1048576` (bitmap:port: `range 0-65535`), failing with EEXIST
// if the set exists.
func encodeCreate(spec state.SetSpec) ([]byte, error) {
	rev, ok := revisions[spec.Type]
	if !ok {
		return nil, fmt.Errorf("%w: set type %q", errEncode, spec.Type)
	}
	if err := checkName(spec.Name); err != nil {
		return nil, err
	}
	var family uint8 // bitmap:port has none
	if spec.Type != state.BitmapPort {
		switch spec.Family {
		case state.IPv4:
			family = unix.NFPROTO_IPV4
		case state.IPv6:
			family = unix.NFPROTO_IPV6
		default:
			return nil, fmt.Errorf("%w: set %s without a family", errEncode, spec.Name)
		}
	}
	m := newRequest(nl.IPSET_CMD_CREATE, unix.NLM_F_CREATE|unix.NLM_F_EXCL, family).
		String(nl.IPSET_ATTR_SETNAME, spec.Name).
		String(nl.IPSET_ATTR_TYPENAME, string(spec.Type)).
		U8(nl.IPSET_ATTR_REVISION, rev).
		U8(nl.IPSET_ATTR_FAMILY, family).
		Begin(nl.IPSET_ATTR_DATA | nested)
	if spec.Type == state.BitmapPort {
		m.BE16(nl.IPSET_ATTR_PORT_FROM|netOrder, 0).BE16(nl.IPSET_ATTR_PORT_TO|netOrder, 65535)
	} else {
		m.BE32(nl.IPSET_ATTR_HASHSIZE|netOrder, hashSize).BE32(nl.IPSET_ATTR_MAXELEM|netOrder, maxElements)
	}
	if spec.Marks {
		m.BE32(nl.IPSET_ATTR_CADT_FLAGS|netOrder, nl.IPSET_FLAG_WITH_SKBINFO)
	}
	return m.End().Bytes(), nil
}

// encodeDestroy encodes `ipset destroy NAME`.
func encodeDestroy(name string) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	// Without NLM_F_EXCL the kernel treats a missing set as destroyed.
	return newRequest(nl.IPSET_CMD_DESTROY, unix.NLM_F_EXCL, unix.AF_INET).String(nl.IPSET_ATTR_SETNAME, name).Bytes(), nil
}

// encodeEntry encodes `ipset add|del NAME MEMBER` without -exist: adding a
// member twice or deleting an absent one fails with ErrExist. With replace,
// an add is `ipset add -exist`, which changes the mark of a member already
// there. The member's fields are those its set type uses.
func encodeEntry(add, replace bool, spec state.SetSpec, e state.SetEntry) ([]byte, error) {
	if err := checkName(spec.Name); err != nil {
		return nil, err
	}
	cmd := uint16(nl.IPSET_CMD_DEL)
	if add {
		cmd = nl.IPSET_CMD_ADD
	}
	if err := checkFamily(spec, e); err != nil {
		return nil, err
	}
	flags := uint16(unix.NLM_F_EXCL)
	if add && replace {
		flags = 0
	}
	m := newRequest(cmd, flags, unix.AF_INET).
		String(nl.IPSET_ATTR_SETNAME, spec.Name).
		Begin(nl.IPSET_ATTR_DATA | nested)
	if err := appendMember(m, add, spec, e); err != nil {
		return nil, err
	}
	return m.End().Bytes(), nil
}

// appendMember adds the fields of a member that its set type uses (and its
// mark, when added to a set with marks).
func appendMember(m *nlbatch.Message, add bool, spec state.SetSpec, e state.SetEntry) error {
	var err error
	switch spec.Type {
	case state.HashIP:
		err = appendIP(m, nl.IPSET_ATTR_IP, e.Addr)
	case state.HashIPPort:
		err = appendIPPort(m, e)
	case state.HashIPPortIP:
		if err = appendIPPort(m, e); err == nil {
			err = appendIP(m, nl.IPSET_ATTR_IP2, e.Addr2)
		}
	case state.HashIPPortNet:
		if err = appendIPPort(m, e); err == nil {
			if !e.Net.IsValid() {
				return fmt.Errorf("%w: %s member without a network", errEncode, spec.Type)
			}
			if err = appendIP(m, nl.IPSET_ATTR_IP2, e.Net.Addr()); err == nil {
				m.U8(nl.IPSET_ATTR_CIDR2, uint8(e.Net.Bits()))
			}
		}
	case state.HashNet:
		if !e.Net.IsValid() {
			return fmt.Errorf("%w: %s member without a network", errEncode, spec.Type)
		}
		if err = appendIP(m, nl.IPSET_ATTR_IP, e.Net.Addr()); err == nil {
			m.U8(nl.IPSET_ATTR_CIDR, uint8(e.Net.Bits()))
		}
	case state.BitmapPort:
		m.BE16(nl.IPSET_ATTR_PORT|netOrder, e.Port)
	default:
		err = fmt.Errorf("%w: set type %q", errEncode, spec.Type)
	}
	if err != nil {
		return err
	}
	if spec.Marks && add {
		// struct ipset skbmark: the mark and its mask, one 64-bit number
		m.Attr(nl.IPSET_ATTR_SKBMARK|netOrder, binary.BigEndian.AppendUint64(nil, uint64(e.Mark)<<32|uint64(e.MarkMask)))
	}
	return nil
}

// EncodeCreate encodes `ipset create` as Create sends it (for the
// benchmark's floor loader, which sends the daemon's own requests).
func EncodeCreate(spec state.SetSpec) ([]byte, error) { return encodeCreate(spec) }

// EncodeAdds encodes adding members to a set the way `ipset restore` does:
// many members per request, in an IPSET_ATTR_ADT nest of IPSET_ATTR_DATA
// nests, perMessage at most in each. The kernel stops a request at its
// first failing member, so this suits loading a set known to be empty (the
// benchmark's floor loader), not the daemon's per-member results.
func EncodeAdds(spec state.SetSpec, entries []state.SetEntry, perMessage int) ([][]byte, error) {
	if err := checkName(spec.Name); err != nil {
		return nil, err
	}
	var out [][]byte
	for start := 0; start < len(entries); start += perMessage {
		// The kernel wants a line number with an ADT nest (it reports it
		// back with an error); the members here have none.
		m := newRequest(nl.IPSET_CMD_ADD, unix.NLM_F_EXCL, unix.AF_INET).
			String(nl.IPSET_ATTR_SETNAME, spec.Name).
			U32(nl.IPSET_ATTR_LINENO, 0).
			Begin(nl.IPSET_ATTR_ADT | nested)
		for _, e := range entries[start:min(len(entries), start+perMessage)] {
			if err := checkFamily(spec, e); err != nil {
				return nil, err
			}
			m.Begin(nl.IPSET_ATTR_DATA | nested)
			if err := appendMember(m, true, spec, e); err != nil {
				return nil, err
			}
			m.End()
		}
		out = append(out, m.End().Bytes())
	}
	return out, nil
}

func appendIPPort(m *nlbatch.Message, e state.SetEntry) error {
	if err := appendIP(m, nl.IPSET_ATTR_IP, e.Addr); err != nil {
		return err
	}
	m.BE16(nl.IPSET_ATTR_PORT|netOrder, e.Port)
	m.U8(nl.IPSET_ATTR_PROTO, uint8(e.Proto))
	return nil
}

// appendIP adds an address nest: {IPADDR_IPV4|IPV6, network order}.
func appendIP(m *nlbatch.Message, typ uint16, a netip.Addr) error {
	a = a.Unmap()
	if !a.IsValid() {
		return fmt.Errorf("%w: member without an address", errEncode)
	}
	inner := uint16(nl.IPSET_ATTR_IPADDR_IPV4)
	if a.Is6() {
		inner = nl.IPSET_ATTR_IPADDR_IPV6
	}
	m.Begin(typ|nested).Attr(inner|netOrder, a.AsSlice()).End()
	return nil
}

// checkFamily refuses a member of the other family, as the ipset tool does:
// the kernel would only say IPSET_ERR_PROTOCOL.
func checkFamily(spec state.SetSpec, e state.SetEntry) error {
	if spec.Type == state.BitmapPort || spec.Family == 0 {
		return nil
	}
	for _, a := range []netip.Addr{e.Addr, e.Addr2, e.Net.Addr()} {
		if !a.IsValid() || state.FamilyOf(a) == spec.Family {
			continue
		}
		want := ErrIPAddrIPv4
		if spec.Family == state.IPv6 {
			want = ErrIPAddrIPv6
		}
		return fmt.Errorf("%w: %w: member %s of set %s", errEncode, want, e.Format(spec.Type), spec.Name)
	}
	return nil
}

func checkName(name string) error {
	if name == "" || len(name) >= nl.IPSET_MAXNAMELEN {
		return fmt.Errorf("%w: set name %q must have 1 to %d bytes", errEncode, name, nl.IPSET_MAXNAMELEN-1)
	}
	return nil
}
