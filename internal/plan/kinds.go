package plan

import (
	"fmt"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// kindRow is everything an operation kind is, in one place: how it is
// named and rendered, which kernel interface runs it, how it is batched,
// and what a kernel answer of "already there" or "already gone" means for
// it. The compact Op stays as it is; the table is indexed by its Kind.
type kindRow struct {
	name string
	sub  Subsystem
	// batched kinds of one subsystem go to the kernel together when
	// consecutive (one pipelined Exec); others run one by one.
	batched bool
	// ipvsadm is the ipvsadm command flag of an IPVS write ("-a"); the
	// kernel package maps it to its command (plan imports no kernel code).
	ipvsadm string
	// retryAs is the kind an add that finds its object present is retried
	// as (an edit); existsDone says such an add is done as it is.
	retryAs    Kind
	existsDone bool
	// goneDone says a delete that finds its object gone is done.
	goneDone bool
	// operand renders the operation's object after its name (nil: none).
	operand func(Op) string
	// describe says in words what the operation does.
	describe func(Op) string
}

// kinds has one row per Kind, in Kind order.
var kinds = [numKinds]kindRow{
	EnsureLink: {name: "ensure-link", sub: SubLink, operand: linkName,
		describe: func(Op) string { return "create dummy link " + state.LinkName }},
	SetSysctl: {name: "sysctl", sub: SubSysctl, operand: func(o Op) string { return o.Sysctl + "=" + o.Value },
		describe: func(o Op) string { return fmt.Sprintf("set sysctl %s=%s", o.Sysctl, o.Value) }},
	SetTimeouts: {name: "timeouts", sub: SubIPVS,
		operand: func(o Op) string {
			return fmt.Sprintf("tcp=%v tcpfin=%v udp=%v", o.Timeouts.TCP, o.Timeouts.TCPFin, o.Timeouts.UDP)
		},
		describe: func(Op) string { return "set IPVS timeouts" }},
	CreateSet: {name: "create-set", sub: SubIPSet, existsDone: true, operand: setNameType,
		describe: func(o Op) string { return fmt.Sprintf("create ipset %s (%s)", o.Set.Name, o.Set.Type) }},
	AddAddress: {name: "add-address", sub: SubLink, batched: true, existsDone: true, operand: hostPrefix,
		describe: func(o Op) string { return fmt.Sprintf("bind %s to %s", state.HostPrefix(o.Addr), state.LinkName) }},
	AddVS: {name: "add-vs", sub: SubIPVS, batched: true, ipvsadm: "-A", retryAs: EditVS,
		operand: vsArgs, describe: func(o Op) string { return "add virtual server " + vsOf(o) }},
	EditVS: {name: "edit-vs", sub: SubIPVS, batched: true, ipvsadm: "-E",
		operand: vsArgs, describe: func(o Op) string { return "update virtual server " + vsOf(o) }},
	AddRS: {name: "add-rs", sub: SubIPVS, batched: true, ipvsadm: "-a", retryAs: EditRS,
		operand:  rsArgs,
		describe: func(o Op) string { return fmt.Sprintf("add real server %s to %s", o.RS.Key, vsOf(o)) }},
	EditRS: {name: "edit-rs", sub: SubIPVS, batched: true, ipvsadm: "-e",
		operand: rsArgs,
		describe: func(o Op) string {
			return fmt.Sprintf("set weight %d of real server %s of %s", o.RS.Weight, o.RS.Key, vsOf(o))
		}},
	AddEntry: {name: "add-entry", sub: SubIPSet, batched: true, existsDone: true, operand: member,
		describe: func(o Op) string { return fmt.Sprintf("add %s to ipset %s", o.Entry.Format(o.Set.Type), o.Set.Name) }},
	SyncRules: {name: "sync-rules", sub: SubIPTables, operand: family,
		describe: func(o Op) string { return fmt.Sprintf("restore iptables rules (IPv%d)", o.Family) }},
	DelEntry: {name: "del-entry", sub: SubIPSet, batched: true, goneDone: true, operand: member,
		describe: func(o Op) string {
			return fmt.Sprintf("delete %s from ipset %s", o.Entry.Format(o.Set.Type), o.Set.Name)
		}},
	DelRS: {name: "del-rs", sub: SubIPVS, batched: true, ipvsadm: "-d", goneDone: true,
		operand:  func(o Op) string { return o.VS.Key.Ipvsadm() + " -r " + o.RS.Key.String() },
		describe: func(o Op) string { return fmt.Sprintf("delete real server %s of %s", o.RS.Key, vsOf(o)) }},
	FlushConntrack: {name: "flush-conntrack", sub: SubConntrack, batched: true,
		operand: func(o Op) string {
			if o.RS.Key.Addr.IsValid() {
				return o.VS.Key.String() + " -> " + o.RS.Key.Addr.String()
			}
			return o.VS.Key.String()
		},
		describe: func(o Op) string { return "flush conntrack entries of " + vsOf(o) }},
	DelVS: {name: "del-vs", sub: SubIPVS, batched: true, ipvsadm: "-D", goneDone: true,
		operand:  func(o Op) string { return o.VS.Key.Ipvsadm() },
		describe: func(o Op) string { return "delete virtual server " + vsOf(o) }},
	DelAddress: {name: "del-address", sub: SubLink, batched: true, goneDone: true, operand: hostPrefix,
		describe: func(o Op) string { return fmt.Sprintf("unbind %s from %s", state.HostPrefix(o.Addr), state.LinkName) }},
	DeleteRules: {name: "delete-rules", sub: SubIPTables, operand: family,
		describe: func(o Op) string { return fmt.Sprintf("delete iptables rules (IPv%d)", o.Family) }},
	DestroySet: {name: "destroy-set", sub: SubIPSet, goneDone: true, operand: setNameType,
		describe: func(o Op) string { return "destroy ipset " + o.Set.Name }},
	DeleteLink: {name: "delete-link", sub: SubLink, operand: linkName,
		describe: func(Op) string { return "delete link " + state.LinkName }},
	// nftables kinds: one transaction per family (batched); their words
	// need the nft names, so apply.Describe says them (describeNFT).
	NFTCreateSet: {name: "nft-add-set", sub: SubNFTables, batched: true,
		operand: func(o Op) string { return nftFamily(o.Set.Family) + " " + o.Set.Name }},
	NFTSyncChain:   {name: "nft-sync-chain", sub: SubNFTables, batched: true, operand: nftChain},
	NFTAddElement:  {name: "nft-add-element", sub: SubNFTables, batched: true, operand: nftElement},
	NFTDelElement:  {name: "nft-del-element", sub: SubNFTables, batched: true, operand: nftElement},
	NFTDeleteChain: {name: "nft-delete-chain", sub: SubNFTables, batched: true, operand: nftChain},
	NFTDeleteSet: {name: "nft-delete-set", sub: SubNFTables, batched: true,
		operand: func(o Op) string { return nftFamily(o.Family) + " " + o.NFTName }},
	NFTDeleteTable: {name: "nft-delete-table", sub: SubNFTables, operand: func(o Op) string { return nftFamily(o.Family) }},
}

func nftChain(o Op) string { return nftFamily(o.Family) + " " + o.Chain.Name }
func nftElement(o Op) string {
	return nftFamily(o.Set.Family) + " " + o.Set.Name + " " + o.Entry.Format(o.Set.Type)
}

func linkName(Op) string      { return state.LinkName }
func setNameType(o Op) string { return o.Set.Name + " " + string(o.Set.Type) }
func hostPrefix(o Op) string  { return state.HostPrefix(o.Addr).String() }
func vsArgs(o Op) string      { return o.VS.IpvsadmArgs() }
func rsArgs(o Op) string      { return o.RS.IpvsadmArgs(o.VS.Key) }
func member(o Op) string      { return o.Set.Name + " " + o.Entry.Format(o.Set.Type) }
func family(o Op) string      { return fmt.Sprintf("ipv%d", o.Family) }

// vsOf names an operation's virtual server with its Service port.
func vsOf(o Op) string {
	vs := o.VS.Key.String()
	if o.VS.Origin.Service != "" {
		vs += " (" + o.VS.Origin.String() + ")"
	}
	return vs
}

// Batchable says whether two consecutive kinds go to the kernel together.
func Batchable(a, b Kind) bool {
	return kinds[a].batched && kinds[b].batched && kinds[a].sub == kinds[b].sub
}

// IpvsadmFlag is the ipvsadm command flag of an IPVS write kind ("-a"; ""
// for other kinds): kernel.IPVSCommand maps it to the kernel's command.
func (k Kind) IpvsadmFlag() string { return kinds[k].ipvsadm }

// RetryAs is the kind an add that finds its object present is retried as
// (an edit), or k itself when there is none.
func (k Kind) RetryAs() Kind {
	if r := kinds[k].retryAs; r != EnsureLink {
		return r
	}
	return k
}

// ExistsIsDone says an operation of kind k that finds its object already
// there is done: adding a set member, an address, a set.
func (k Kind) ExistsIsDone() bool { return kinds[k].existsDone }

// GoneIsDone says an operation of kind k that finds its object already
// gone is done: every delete but the link's and the rules'.
func (k Kind) GoneIsDone() bool { return kinds[k].goneDone }

// IsVirtualServer says the operation's object is a virtual server or one
// of its real servers (or their conntrack entries).
func (k Kind) IsVirtualServer() bool { return kinds[k].ipvsadm != "" || k == FlushConntrack }
