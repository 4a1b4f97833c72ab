// Package kernel defines the narrow interfaces through which ipvs-proxy
// reads and changes the kernel, one per subsystem: IPVS, the dummy link and
// its addresses, ipsets, iptables, sysctls and conntrack. Real implementations
// live in subpackages (netlink, iptables-restore, /proc/sys); package fake has
// in-memory implementations as strict as the kernel.
//
// Contracts shared by all implementations:
//   - Errors are returned as the kernel gives them (syscall.Errno where the
//     kernel answers with one), so callers can tell EEXIST/ENOENT/ESRCH apart.
//   - Batch methods (Exec) run every operation in order without stopping at
//     a failure and return one error per operation (nil for success); a
//     real implementation pipelines them, sending many requests before
//     reading the acknowledgements.
//   - Reads are dumps: one request for the whole table, never a lookup per object.
package kernel

import (
	"net/netip"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// IPVSCmd is an IPVS write command.
type IPVSCmd uint8

// The IPVS commands.
const (
	// AddService: ipvsadm -A -t VIP:PORT -s SCHED [-b FLAGS] [-p TIMEOUT [-M MASK]]. EEXIST if present.
	AddService IPVSCmd = iota + 1
	// EditService: ipvsadm -E ... (same arguments). ESRCH if absent.
	EditService
	// DelService: ipvsadm -D -t VIP:PORT. ESRCH if absent.
	DelService
	// AddDest: ipvsadm -a -t VIP:PORT -r RIP:PORT -m -w W. EEXIST if present, ESRCH without its service.
	AddDest
	// EditDest: ipvsadm -e -t VIP:PORT -r RIP:PORT -m -w W. ENOENT if absent.
	EditDest
	// DelDest: ipvsadm -d -t VIP:PORT -r RIP:PORT. ENOENT if absent, ESRCH without its service.
	DelDest
)

// IPVSOp is one IPVS write; RS is unused by service commands.
type IPVSOp struct {
	Cmd IPVSCmd
	VS  state.VirtualServer
	RS  state.RealServer
}

// IPVS is the kernel's IP Virtual Server table.
type IPVS interface {
	// Dump returns every virtual server with its real servers and their
	// connection counts: ipvsadm -Ln --stats. IPVS has no netlink dump of
	// all destinations; the real implementation reads them from one
	// listing of the table (/proc/net/ip_vs), not one request per service.
	Dump() (map[state.VSKey]*state.Service, error)
	// DumpDestinations returns the real servers of the given virtual servers
	// only, with fresh connection counts (used to finish draining).
	DumpDestinations(keys []state.VSKey) (map[state.VSKey]map[state.RSKey]state.RealServer, error)
	// Exec runs the writes in order, pipelined; errs[i] belongs to ops[i].
	Exec(ops []IPVSOp) []error
	// Timeouts returns IPVS's connection timeouts: ipvsadm -L --timeout.
	Timeouts() (state.Timeouts, error)
	// SetTimeouts sets the non-zero timeouts: ipvsadm --set TCP TCPFIN UDP.
	SetTimeouts(t state.Timeouts) error
}

// AddrOp adds (Add true) or removes an address of the dummy link.
type AddrOp struct {
	Add  bool
	Addr netip.Addr
}

// Link is the dummy link kube-ipvs0 and the node's addresses.
type Link interface {
	// Addresses returns whether kube-ipvs0 exists and its addresses: ip -o addr show dev kube-ipvs0.
	Addresses() (exists bool, addrs []netip.Addr, err error)
	// EnsureLink creates kube-ipvs0 if missing, left down: ip link add kube-ipvs0 type dummy.
	EnsureLink() error
	// DeleteLink removes kube-ipvs0 and its addresses: ip link del kube-ipvs0. Gone already is success.
	DeleteLink() error
	// Exec adds or removes addresses as /32 or /128, pipelined:
	// ip addr add|del ADDR/32 dev kube-ipvs0. EEXIST / EADDRNOTAVAIL as the kernel says.
	Exec(ops []AddrOp) []error
	// NodeAddresses lists the node's own addresses: those of every link but
	// kube-ipvs0, without IPv6 link-local ones.
	NodeAddresses() ([]netip.Addr, error)
}

// SetOp adds (Add true) or removes a set member.
type SetOp struct {
	Add   bool
	Set   state.SetSpec
	Entry state.SetEntry
	// Replace, with Add, overwrites the mark of a member already there
	// (ipset add -exist): a member's mark is no part of its identity.
	Replace bool
}

// IPSet is the kernel's ipsets.
type IPSet interface {
	// List returns every set on the node with its members: ipset list (one dump).
	List() (map[string]*state.Set, error)
	// Create creates a set: ipset create NAME TYPE family inet|inet6 [comment]. EEXIST if present.
	Create(spec state.SetSpec) error
	// Destroy destroys a set: ipset destroy NAME. ENOENT if absent; EBUSY while a rule uses it.
	Destroy(name string) error
	// Exec adds or removes members, pipelined: ipset add|del NAME MEMBER.
	// Adding a present member or deleting an absent one fails (IPSET_ERR_EXIST),
	// except an add with Replace, which changes the member's mark.
	Exec(ops []SetOp) []error
}

// IPTables runs iptables-save and iptables-restore (ip6tables-* for IPv6).
type IPTables interface {
	// Save returns the nat and filter tables: iptables-save -t nat; iptables-save -t filter.
	Save(f state.Family) (string, error)
	// Restore applies input atomically per table: iptables-restore --noflush --wait.
	Restore(f state.Family, input string) error
}

// Sysctl reads and writes /proc/sys.
type Sysctl interface {
	// Get returns the value of a key such as "net/ipv4/vs/conntrack".
	Get(key string) (string, error)
	// Set writes a value: sysctl -w net.ipv4.vs.conntrack=1.
	Set(key, value string) error
}

// ConntrackFilter selects conntrack entries of one virtual server, and of one
// of its real servers when RS is valid.
type ConntrackFilter struct {
	Proto state.Protocol
	VIP   netip.Addr
	Port  uint16
	RS    netip.Addr
}

// Conntrack deletes netfilter conntrack entries.
type Conntrack interface {
	// Flush deletes the entries matching any filter, in one table walk:
	// conntrack -D -p udp --orig-dst VIP --orig-port-dst PORT [--reply-src RS].
	Flush(filters []ConntrackFilter) error
}

// Kernel bundles the interfaces.
type Kernel struct {
	IPVS     IPVS
	Link     Link
	IPSet    IPSet
	IPTables IPTables
	// NFTables is used by the nftables rules backend (nil without it).
	NFTables  NFTables
	Sysctl    Sysctl
	Conntrack Conntrack
}
