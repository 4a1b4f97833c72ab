// Package plan diffs a desired state against an observed one and returns the
// ordered operations that turn the kernel into the desired state. It is pure:
// ordering and ownership decisions live here and nowhere else.
package plan

import (
	"fmt"
	"net/netip"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Kind is the kind of an operation. Plans list operations in Kind order:
// create the link, bind the address, create the virtual server, add its real
// servers, add set members, then rules; removals in reverse.
type Kind uint8

// The operation kinds, in the order a plan runs them.
const (
	EnsureLink Kind = iota
	SetSysctl
	SetTimeouts
	CreateSet
	AddAddress
	AddVS
	EditVS
	AddRS
	EditRS
	AddEntry
	SyncRules
	NFTCreateSet
	NFTSyncChain
	NFTAddElement
	NFTDelElement
	NFTDeleteChain
	NFTDeleteSet
	DelEntry
	DelRS
	FlushConntrack
	DelVS
	DelAddress
	DeleteRules
	DestroySet
	NFTDeleteTable
	DeleteLink
	numKinds
)

// String names the kind ("add-rs").
func (k Kind) String() string {
	if k < numKinds {
		return kinds[k].name
	}
	return fmt.Sprintf("kind-%d", k)
}

// Subsystem is the kernel interface an operation goes through.
type Subsystem uint8

// The kernel subsystems.
const (
	SubLink Subsystem = iota
	SubSysctl
	SubIPVS
	SubIPSet
	SubIPTables
	SubConntrack
	SubNFTables
)

var subsystemNames = [...]string{SubLink: "link", SubSysctl: "sysctl", SubIPVS: "ipvs", SubIPSet: "ipset",
	SubIPTables: "iptables", SubConntrack: "conntrack"}

// String names the subsystem ("ipvs").
func (s Subsystem) String() string {
	if int(s) < len(subsystemNames) {
		return subsystemNames[s]
	}
	return fmt.Sprintf("subsystem-%d", s)
}

// Subsystem returns which kernel interface runs the operation.
func (k Kind) Subsystem() Subsystem { return kinds[k].sub }

// Op is one kernel operation. Which fields matter depends on Kind.
type Op struct {
	Kind Kind
	// VS is the virtual server of VS and RS operations (and of FlushConntrack).
	VS state.VirtualServer
	// RS is the real server of RS operations; for FlushConntrack, a zero RS
	// address flushes every entry of the virtual server.
	RS state.RealServer
	// Detail holds the fields of the other kinds; it is nil for IPVS and
	// conntrack operations. They are nearly all of a large plan (150,000 at
	// 10,000 Services), which it keeps at 200 bytes each instead of 432.
	*Detail
}

// Detail is what address, set, rule, sysctl and timeout operations carry.
type Detail struct {
	Addr netip.Addr
	Set  state.SetSpec
	// Entry is the set member of AddEntry/DelEntry.
	Entry state.SetEntry
	// Replace, on AddEntry, changes the mark of the member already there
	// (see state.SetEntry.Key).
	Replace bool
	// Family and Restore carry the iptables-restore input of rule operations;
	// Family is also the table of nftables operations.
	Family  state.Family
	Restore string
	// Chain is the chain of NFTSyncChain (whole) and NFTDeleteChain (its name).
	Chain state.NFTChain
	// NFTName is the set of NFTDeleteSet, by its nft name (it stands for no ipset).
	NFTName string
	// Sysctl is the /proc/sys path and value of SetSysctl.
	Sysctl, Value string
	Timeouts      state.Timeouts
}

// String renders the operation on one line, in ipvsadm / ipset syntax where
// one exists: "add-rs -a -t 10.96.0.10:53 -r 10.244.1.7:53 -m -w 1".
func (o Op) String() string {
	if o.Kind >= numKinds {
		return o.Kind.String()
	}
	row := kinds[o.Kind]
	if row.operand == nil {
		return row.name
	}
	if row.ipvsadm != "" {
		return row.name + " " + row.ipvsadm + " " + row.operand(o)
	}
	return row.name + " " + row.operand(o)
}

// Describe says in words what an operation does, for errors and logs:
// "add real server 10.244.1.7:80 to TCP 10.96.0.10:53 (kube-system/kube-dns:dns)".
func Describe(o Op) string {
	if o.Kind >= numKinds || kinds[o.Kind].describe == nil {
		return o.String()
	}
	return kinds[o.Kind].describe(o)
}

// Plan is an ordered list of operations.
type Plan struct {
	Ops []Op
}

// Empty reports whether there is nothing to do.
func (p *Plan) Empty() bool { return len(p.Ops) == 0 }

// Writes counts the operations.
func (p *Plan) Writes() int { return len(p.Ops) }

// Counts returns the number of operations of each kind.
func (p *Plan) Counts() map[Kind]int {
	out := map[Kind]int{}
	for _, o := range p.Ops {
		out[o.Kind]++
	}
	return out
}

// nftFamily names an nftables family ("ip", "ip6").
func nftFamily(f state.Family) string {
	if f == state.IPv6 {
		return "ip6"
	}
	return "ip"
}
