package ipset

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// nfgenmsgLen is the netfilter header before an ipset message's attributes.
const nfgenmsgLen = 4

// lister accumulates a list dump. The kernel splits a large set over several
// messages; only the first carries the type and family, the rest carry the
// name and more members.
type lister struct {
	sets map[string]*state.Set
}

// add folds one dump message into the sets.
func (l *lister) add(data []byte) error {
	if len(data) < nfgenmsgLen {
		return fmt.Errorf("%w: ipset message of %d bytes", nlbatch.ErrMalformed, len(data))
	}
	attrs, err := nlbatch.ParseAttrs(data[nfgenmsgLen:])
	if err != nil {
		return err
	}
	var name, typ string
	family, adt, marks := -1, []byte(nil), false
	for _, a := range attrs {
		switch a.Type {
		case nl.IPSET_ATTR_SETNAME:
			name = a.String()
		case nl.IPSET_ATTR_TYPENAME:
			typ = a.String()
		case nl.IPSET_ATTR_FAMILY:
			if v, ok := a.U8(); ok {
				family = int(v)
			}
		case nl.IPSET_ATTR_DATA: // what the set was created with
			marks = createdWithMarks(a.Value)
		case nl.IPSET_ATTR_ADT:
			adt = a.Value
		}
	}
	if name == "" {
		return fmt.Errorf("%w: ipset list message without a set name", nlbatch.ErrMalformed)
	}
	set := l.sets[name]
	if set == nil {
		if typ == "" {
			return fmt.Errorf("%w: members of set %s before its header", nlbatch.ErrMalformed, name)
		}
		set = state.NewSet(state.SetSpec{Name: name, Type: state.SetType(typ), Family: familyOf(family), Marks: marks})
		l.sets[name] = set
	}
	if adt == nil {
		return nil
	}
	entries, err := nlbatch.ParseAttrs(adt)
	if err != nil {
		return err
	}
	for _, d := range entries {
		if d.Type != nl.IPSET_ATTR_DATA {
			continue
		}
		e, ok, err := parseEntry(set.Type, d.Value)
		if err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
		if ok {
			set.Entries[e] = struct{}{}
		}
	}
	return nil
}

// createdWithMarks reports whether a set's creation data has the skbinfo flag.
func createdWithMarks(data []byte) bool {
	attrs, err := nlbatch.ParseAttrs(data)
	if err != nil {
		return false
	}
	for _, a := range attrs {
		if a.Type == nl.IPSET_ATTR_CADT_FLAGS {
			v, ok := a.BE32()
			return ok && v&nl.IPSET_FLAG_WITH_SKBINFO != 0
		}
	}
	return false
}

func familyOf(nfproto int) state.Family {
	switch nfproto {
	case unix.NFPROTO_IPV4:
		return state.IPv4
	case unix.NFPROTO_IPV6:
		return state.IPv6
	}
	return 0 // bitmap:port, hash:mac: no family
}

// rawEntry holds every member attribute ipvs-proxy's set types use.
type rawEntry struct {
	ip, ip2     netip.Addr
	cidr, cidr2 uint8
	port        uint16
	proto       uint8
	skbmark     uint64 // mark << 32 | mask
}

// parseEntry decodes one member of a set of type t. ok is false for a type
// ipvs-proxy does not use: such sets are listed without members.
func parseEntry(t state.SetType, data []byte) (e state.SetEntry, ok bool, err error) {
	attrs, err := nlbatch.ParseAttrs(data)
	if err != nil {
		return e, false, err
	}
	var r rawEntry
	for _, a := range attrs {
		good := true
		switch a.Type {
		case nl.IPSET_ATTR_IP:
			r.ip, err = parseIP(a)
		case nl.IPSET_ATTR_IP2:
			r.ip2, err = parseIP(a)
		case nl.IPSET_ATTR_CIDR:
			r.cidr, good = a.U8()
		case nl.IPSET_ATTR_CIDR2:
			r.cidr2, good = a.U8()
		case nl.IPSET_ATTR_SKBMARK:
			good = len(a.Value) == 8
			if good {
				r.skbmark = binary.BigEndian.Uint64(a.Value)
			}
		case nl.IPSET_ATTR_PORT:
			r.port, good = a.BE16()
		case nl.IPSET_ATTR_PROTO:
			r.proto, good = a.U8()
		}
		if err != nil {
			return e, false, err
		}
		if !good {
			return e, false, fmt.Errorf("%w: member attribute %d of %d bytes", nlbatch.ErrMalformed, a.Type, len(a.Value))
		}
	}
	e, ok = r.entry(t)
	e.Mark, e.MarkMask = uint32(r.skbmark>>32), uint32(r.skbmark)
	return e, ok, nil
}

// entry assembles a member of a set of type t from its attributes.
func (r rawEntry) entry(t state.SetType) (state.SetEntry, bool) {
	switch t {
	case state.HashIP:
		return state.SetEntry{Addr: r.ip}, true
	case state.HashIPPort:
		return state.SetEntry{Addr: r.ip, Proto: state.Protocol(r.proto), Port: r.port}, true
	case state.HashIPPortIP:
		return state.SetEntry{Addr: r.ip, Proto: state.Protocol(r.proto), Port: r.port, Addr2: r.ip2}, true
	case state.HashIPPortNet:
		net := netip.PrefixFrom(r.ip2, int(r.cidr2))
		return state.SetEntry{Addr: r.ip, Proto: state.Protocol(r.proto), Port: r.port, Net: net}, true
	case state.HashNet:
		return state.SetEntry{Net: netip.PrefixFrom(r.ip, int(r.cidr))}, true
	case state.BitmapPort:
		return state.SetEntry{Port: r.port}, true
	}
	return state.SetEntry{}, false
}

// parseIP reads an address nest {IPADDR_IPV4|IPADDR_IPV6}.
func parseIP(a nlbatch.Attr) (netip.Addr, error) {
	inner, err := nlbatch.ParseAttrs(a.Value)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, i := range inner {
		switch {
		case i.Type == nl.IPSET_ATTR_IPADDR_IPV4 && len(i.Value) == 4:
			return netip.AddrFrom4([4]byte(i.Value)), nil
		case i.Type == nl.IPSET_ATTR_IPADDR_IPV6 && len(i.Value) == 16:
			return netip.AddrFrom16([16]byte(i.Value)), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%w: address attribute without an IPv4 or IPv6 address", nlbatch.ErrMalformed)
}
