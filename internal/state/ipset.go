package state

import (
	"net/netip"
	"strconv"
)

// SetType is an ipset type.
type SetType string

// The ipset types ipvs-proxy uses.
const (
	HashIP        SetType = "hash:ip"
	HashIPPort    SetType = "hash:ip,port"
	HashIPPortIP  SetType = "hash:ip,port,ip"
	HashIPPortNet SetType = "hash:ip,port,net"
	HashNet       SetType = "hash:net"
	BitmapPort    SetType = "bitmap:port"
)

// Family is an IP family.
type Family uint8

// The IP families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// FamilyOf returns the family of addr.
func FamilyOf(addr netip.Addr) Family {
	if addr.Is4() || addr.Is4In6() {
		return IPv4
	}
	return IPv6
}

// SetEntry is an ipset member. Which fields are used depends on the set's type.
type SetEntry struct {
	Addr  netip.Addr   // hash:ip*, first dimension
	Proto Protocol     // with Port
	Port  uint16       // hash:ip,port*, bitmap:port
	Addr2 netip.Addr   // hash:ip,port,ip third dimension
	Net   netip.Prefix // hash:ip,port,net third dimension; hash:net's only one
	// Mark and MarkMask are the firewall mark a member carries in a set
	// with SetSpec.Marks (ipset's skbinfo extension: `skbmark 0x1/0x3fff`);
	// iptables' SET target sets it on packets matching the member. They
	// are no part of the member's identity in the kernel: adding a member
	// again with another mark changes its mark (see Key).
	Mark, MarkMask uint32
}

// Key returns the entry without its mark: what identifies it in its set.
func (e SetEntry) Key() SetEntry {
	e.Mark, e.MarkMask = 0, 0
	return e
}

// Format renders the member the way `ipset save` does for a set of type t.
func (e SetEntry) Format(t SetType) string {
	s := e.formatKey(t)
	switch e.MarkMask {
	case 0:
	case 0xffffffff:
		s += " skbmark 0x" + strconv.FormatUint(uint64(e.Mark), 16)
	default:
		s += " skbmark 0x" + strconv.FormatUint(uint64(e.Mark), 16) + "/0x" + strconv.FormatUint(uint64(e.MarkMask), 16)
	}
	return s
}

func (e SetEntry) formatKey(t SetType) string {
	port := e.Proto.String() + ":" + strconv.Itoa(int(e.Port))
	switch t {
	case HashIP:
		return e.Addr.String()
	case HashIPPort:
		return e.Addr.String() + "," + port
	case HashIPPortIP:
		return e.Addr.String() + "," + port + "," + e.Addr2.String()
	case HashIPPortNet:
		if e.Net.IsSingleIP() { // ipset save prints a one-address net without its length
			return e.Addr.String() + "," + port + "," + e.Net.Addr().String()
		}
		return e.Addr.String() + "," + port + "," + e.Net.String()
	case HashNet:
		if e.Net.IsSingleIP() {
			return e.Net.Addr().String()
		}
		return e.Net.String()
	case BitmapPort:
		return strconv.Itoa(int(e.Port))
	}
	return "?"
}

// Less orders entries by their fields.
func (e SetEntry) Less(o SetEntry) bool {
	if e.Addr != o.Addr {
		return e.Addr.Less(o.Addr)
	}
	if e.Proto != o.Proto {
		return e.Proto < o.Proto
	}
	if e.Port != o.Port {
		return e.Port < o.Port
	}
	if e.Addr2 != o.Addr2 {
		return e.Addr2.Less(o.Addr2)
	}
	if e.Net.Addr() != o.Net.Addr() {
		return e.Net.Addr().Less(o.Net.Addr())
	}
	if e.Net.Bits() != o.Net.Bits() {
		return e.Net.Bits() < o.Net.Bits()
	}
	return e.Mark < o.Mark
}

// SetSpec is what an ipset is created with.
type SetSpec struct {
	Name    string
	Type    SetType
	Family  Family
	Comment string
	// Marks says the set was created with ipset's skbinfo extension: its
	// members carry a firewall mark (SetEntry.Mark).
	Marks bool
}

// Set is an ipset with its members.
type Set struct {
	SetSpec
	Entries map[SetEntry]struct{}
}

// NewSet returns an empty set of the given spec.
func NewSet(spec SetSpec) *Set {
	return &Set{SetSpec: spec, Entries: map[SetEntry]struct{}{}}
}

// HostPrefix returns addr as a full-length prefix (/32 or /128).
func HostPrefix(addr netip.Addr) netip.Prefix {
	return netip.PrefixFrom(addr, addr.BitLen())
}
