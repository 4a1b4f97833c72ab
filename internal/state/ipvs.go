package state

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Protocol is an IP protocol number, as IPVS and ipset use it.
type Protocol uint8

// The protocols a Service port can use.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

// String gives the lower-case name ipset uses ("tcp", "udp", "sctp").
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case SCTP:
		return "sctp"
	}
	return fmt.Sprintf("proto-%d", uint8(p))
}

// ipvsadmFlag is the protocol's service flag in ipvsadm syntax.
func (p Protocol) ipvsadmFlag() string {
	switch p {
	case UDP:
		return "-u"
	case SCTP:
		return "--sctp-service"
	}
	return "-t"
}

// IPVS service flags (include/uapi/linux/ip_vs.h). Only these are managed;
// the kernel also reports IP_VS_SVC_F_HASHED, which is masked off.
const (
	FlagPersistent uint32 = 0x0001
	FlagOnePacket  uint32 = 0x0004
	FlagSched1     uint32 = 0x0008 // sh-fallback / mh-fallback
	FlagSched2     uint32 = 0x0010 // sh-port / mh-port
	FlagSched3     uint32 = 0x0020
	// ManagedFlags are the flag bits that a plan compares and sets.
	ManagedFlags = FlagPersistent | FlagOnePacket | FlagSched1 | FlagSched2 | FlagSched3
)

// Schedulers lists every IPVS scheduler the kernel offers and ipvs-proxy accepts.
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf"}

// ValidScheduler reports whether name is one of Schedulers.
func ValidScheduler(name string) bool {
	for _, s := range Schedulers {
		if s == name {
			return true
		}
	}
	return false
}

// VSKey identifies a virtual server: protocol, address and port, or a
// firewall mark (FWMark non-zero) and an address family, which Addr then
// carries as the family's unspecified address (0.0.0.0 or ::): IPVS keys a
// firewall-mark virtual server by family and mark only.
type VSKey struct {
	Proto  Protocol
	Addr   netip.Addr
	Port   uint16
	FWMark uint32
}

// FWMarkKey returns the key of the firewall-mark virtual server of mark in family f.
func FWMarkKey(mark uint32, f Family) VSKey {
	if f == IPv6 {
		return VSKey{FWMark: mark, Addr: netip.IPv6Unspecified()}
	}
	return VSKey{FWMark: mark, Addr: netip.IPv4Unspecified()}
}

// String renders the key the way ipvsadm -Ln does: "TCP 10.96.0.10:53",
// "UDP [fd00::a]:53", "FWM 1", "FWM 1 IPv6".
func (k VSKey) String() string {
	if k.FWMark != 0 {
		return "FWM " + strconv.FormatUint(uint64(k.FWMark), 10) + map[bool]string{true: " IPv6"}[k.Addr.Is6()]
	}
	return strings.ToUpper(k.Proto.String()) + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}

// Ipvsadm renders the key as ipvsadm's service argument: "-t 10.96.0.10:53",
// "-f 1", "-f 1 -6".
func (k VSKey) Ipvsadm() string {
	if k.FWMark != 0 {
		return "-f " + strconv.FormatUint(uint64(k.FWMark), 10) + map[bool]string{true: " -6"}[k.Addr.Is6()]
	}
	return k.Proto.ipvsadmFlag() + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}

// Less orders keys by address family, address, protocol, port and mark
// (firewall-mark keys first in their family: their address is unspecified).
func (k VSKey) Less(o VSKey) bool {
	if k.Addr != o.Addr {
		return k.Addr.Less(o.Addr)
	}
	if k.Proto != o.Proto {
		return k.Proto < o.Proto
	}
	if k.Port != o.Port {
		return k.Port < o.Port
	}
	return k.FWMark < o.FWMark
}

// VirtualServer is an IPVS service (ipvsadm -A). Its configuration fields are
// compared by the planner; Origin is bookkeeping for logs and status only.
type VirtualServer struct {
	Key       VSKey
	Scheduler string
	// Flags holds the managed IPVS flag bits (FlagPersistent, FlagSched1, ...).
	Flags uint32
	// Timeout is the persistence timeout in seconds; meaningful with FlagPersistent.
	Timeout uint32
	// PersistenceBits is the persistence netmask as a prefix length (32 or 128
	// means one client address); meaningful with FlagPersistent.
	PersistenceBits int
	// Origin says which Service port wants this virtual server. Not compared.
	Origin Origin
}

// SameConfig reports whether two virtual servers would be programmed identically.
func (v VirtualServer) SameConfig(o VirtualServer) bool {
	if v.Key != o.Key || v.Scheduler != o.Scheduler || v.Flags&ManagedFlags != o.Flags&ManagedFlags {
		return false
	}
	if v.Flags&FlagPersistent == 0 {
		return true
	}
	return v.Timeout == o.Timeout && v.persistenceBits() == o.persistenceBits()
}

// persistenceBits defaults the netmask to a single address.
func (v VirtualServer) persistenceBits() int {
	if v.PersistenceBits == 0 {
		return v.Key.Addr.BitLen()
	}
	return v.PersistenceBits
}

// Ipvsadm renders the virtual server in `ipvsadm -Sn` syntax.
func (v VirtualServer) Ipvsadm() string { return "-A " + v.IpvsadmArgs() }

// IpvsadmArgs renders the virtual server's ipvsadm arguments, without the
// command flag (-A, -E): "-t 10.96.0.10:53 -s rr".
func (v VirtualServer) IpvsadmArgs() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s -s %s", v.Key.Ipvsadm(), v.Scheduler)
	if f := schedFlagNames(v.Scheduler, v.Flags); f != "" {
		b.WriteString(" -b " + f)
	}
	if v.Flags&FlagOnePacket != 0 {
		b.WriteString(" -o")
	}
	if v.Flags&FlagPersistent != 0 {
		fmt.Fprintf(&b, " -p %d", v.Timeout)
		if bits := v.persistenceBits(); bits != v.Key.Addr.BitLen() {
			if v.Key.Addr.Is4() {
				p := netip.PrefixFrom(netip.IPv4Unspecified(), bits)
				fmt.Fprintf(&b, " -M %s", prefixMask(p))
			} else {
				fmt.Fprintf(&b, " -M %d", bits)
			}
		}
	}
	return b.String()
}

// schedFlagNames renders scheduler flags the way `ipvsadm -Sn` names them:
// sh-fallback,sh-port for sh, mh-fallback,mh-port for mh, flag-N otherwise.
func schedFlagNames(sched string, flags uint32) string {
	named := sched == "sh" || sched == "mh"
	var names []string
	for i, bit := range []uint32{FlagSched1, FlagSched2, FlagSched3} {
		if flags&bit == 0 {
			continue
		}
		switch {
		case named && i == 0:
			names = append(names, sched+"-fallback")
		case named && i == 1:
			names = append(names, sched+"-port")
		default:
			names = append(names, fmt.Sprintf("flag-%d", i+1))
		}
	}
	return strings.Join(names, ",")
}

func prefixMask(p netip.Prefix) string {
	var m [4]byte
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(m).String()
}

// ForwardMasq is IPVS's masquerading (NAT) forwarding method, the only one
// ipvs-proxy programs. Other values can be observed in a tampered kernel.
const ForwardMasq uint32 = 0

// RSKey identifies a real server within its virtual server.
type RSKey struct {
	Addr netip.Addr
	Port uint16
}

// String renders "10.244.1.7:80" or "[fd00::7]:80".
func (k RSKey) String() string { return netip.AddrPortFrom(k.Addr, k.Port).String() }

// Less orders real servers by address then port.
func (k RSKey) Less(o RSKey) bool {
	if k.Addr != o.Addr {
		return k.Addr.Less(o.Addr)
	}
	return k.Port < o.Port
}

// RealServer is an IPVS destination (ipvsadm -a).
type RealServer struct {
	Key     RSKey
	Weight  int32
	Forward uint32
	// Observed only: connection counts, which decide when a drained real server goes.
	ActiveConns   uint32
	InactiveConns uint32
	// Terminating marks an endpoint used only as kube-proxy's terminating fallback. Not compared.
	Terminating bool
}

// SameConfig reports whether two real servers would be programmed identically.
func (r RealServer) SameConfig(o RealServer) bool {
	return r.Key == o.Key && r.Weight == o.Weight && r.Forward == o.Forward
}

// Ipvsadm renders the real server of vs in `ipvsadm -Sn` syntax.
func (r RealServer) Ipvsadm(vs VSKey) string { return "-a " + r.IpvsadmArgs(vs) }

// IpvsadmArgs renders the real server's ipvsadm arguments, without the
// command flag (-a, -e): "-t 10.96.0.10:53 -r 10.244.1.7:53 -m -w 1".
func (r RealServer) IpvsadmArgs(vs VSKey) string {
	return fmt.Sprintf("%s -r %s %s -w %d", vs.Ipvsadm(), r.Key, forwardFlag(r.Forward), r.Weight)
}

func forwardFlag(f uint32) string {
	switch f {
	case 2:
		return "-i"
	case 3:
		return "-g"
	}
	return "-m"
}

// Service is a virtual server together with its real servers.
type Service struct {
	VirtualServer
	RealServers map[RSKey]RealServer
}

// Stats are a virtual server's traffic counters since it was created.
type Stats struct {
	Conns, InPackets, OutPackets, InBytes, OutBytes uint64
}
