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

var kindNames = [...]string{
	EnsureLink: "ensure-link", SetSysctl: "sysctl", SetTimeouts: "timeouts", CreateSet: "create-set",
	AddAddress: "add-address", AddVS: "add-vs", EditVS: "edit-vs", AddRS: "add-rs", EditRS: "edit-rs",
	AddEntry: "add-entry", SyncRules: "sync-rules", DelEntry: "del-entry", DelRS: "del-rs",
	FlushConntrack: "flush-conntrack", DelVS: "del-vs", DelAddress: "del-address",
	DeleteRules: "delete-rules", DestroySet: "destroy-set", DeleteLink: "delete-link",
	NFTCreateSet: "nft-add-set", NFTSyncChain: "nft-sync-chain", NFTAddElement: "nft-add-element",
	NFTDelElement: "nft-del-element", NFTDeleteChain: "nft-delete-chain", NFTDeleteSet: "nft-delete-set",
	NFTDeleteTable: "nft-delete-table",
}

// String names the kind ("add-rs").
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
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
func (k Kind) Subsystem() Subsystem {
	switch k {
	case EnsureLink, AddAddress, DelAddress, DeleteLink:
		return SubLink
	case SetSysctl:
		return SubSysctl
	case SetTimeouts, AddVS, EditVS, AddRS, EditRS, DelRS, DelVS:
		return SubIPVS
	case CreateSet, AddEntry, DelEntry, DestroySet:
		return SubIPSet
	case SyncRules, DeleteRules:
		return SubIPTables
	case NFTCreateSet, NFTSyncChain, NFTAddElement, NFTDelElement, NFTDeleteChain, NFTDeleteSet, NFTDeleteTable:
		return SubNFTables
	}
	return SubConntrack
}

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

// String renders the operation on one line, in ipvsadm / ipset syntax where one exists.
func (o Op) String() string {
	k := o.Kind.String()
	switch o.Kind {
	case EnsureLink, DeleteLink:
		return k + " " + state.LinkName
	case SetSysctl:
		return k + " " + o.Sysctl + "=" + o.Value
	case SetTimeouts:
		return fmt.Sprintf("%s tcp=%v tcpfin=%v udp=%v", k, o.Timeouts.TCP, o.Timeouts.TCPFin, o.Timeouts.UDP)
	case CreateSet, DestroySet:
		return k + " " + o.Set.Name + " " + string(o.Set.Type)
	case AddAddress, DelAddress:
		return k + " " + state.HostPrefix(o.Addr).String()
	case AddVS:
		return k + " " + o.VS.Ipvsadm()
	case EditVS:
		return k + " -E" + o.VS.Ipvsadm()[2:]
	case DelVS:
		return k + " -D " + o.VS.Key.Ipvsadm()
	case AddRS:
		return k + " " + o.RS.Ipvsadm(o.VS.Key)
	case EditRS:
		return k + " -e" + o.RS.Ipvsadm(o.VS.Key)[2:]
	case DelRS:
		return k + " -d " + o.VS.Key.Ipvsadm() + " -r " + o.RS.Key.String()
	case AddEntry, DelEntry:
		return k + " " + o.Set.Name + " " + o.Entry.Format(o.Set.Type)
	case SyncRules, DeleteRules:
		return fmt.Sprintf("%s ipv%d", k, o.Family)
	case NFTCreateSet:
		return k + " " + nftFamily(o.Set.Family) + " " + o.Set.Name
	case NFTAddElement, NFTDelElement:
		return k + " " + nftFamily(o.Set.Family) + " " + o.Set.Name + " " + o.Entry.Format(o.Set.Type)
	case NFTSyncChain, NFTDeleteChain:
		return k + " " + nftFamily(o.Family) + " " + o.Chain.Name
	case NFTDeleteSet:
		return k + " " + nftFamily(o.Family) + " " + o.NFTName
	case NFTDeleteTable:
		return k + " " + nftFamily(o.Family)
	case FlushConntrack:
		s := k + " " + o.VS.Key.String()
		if o.RS.Key.Addr.IsValid() {
			s += " -> " + o.RS.Key.Addr.String()
		}
		return s
	}
	return k
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
