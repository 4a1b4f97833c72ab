package plan

import (
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Options shape a diff.
type Options struct {
	// Scope limits the diff to these objects (an incremental sync). Nil means
	// everything: a full sync, which also checks sysctls, timeouts, sets and
	// rules, and prunes what is ours but no longer wanted.
	Scope *state.Scope
	// ConnsKnown says the observed connection counts are fresh (from a dump):
	// a removed TCP/SCTP real server without connections is then deleted at
	// once instead of drained.
	ConnsKnown bool
	// ExcludeCIDRs: virtual servers on these addresses are never touched (ipvs.excludeCIDRs).
	ExcludeCIDRs []netip.Prefix
	// NodeAddresses are the addresses this node has or had: a TCP or UDP
	// virtual server on a port that is one of our node ports is ours only
	// on one of them (another program's virtual server elsewhere that
	// happens to use the same port is not).
	NodeAddresses map[netip.Addr]bool
	// Cleanup removes everything ours: rules, sets and the link too.
	Cleanup bool
	// Backend is where the sets and rules go; the other backend's objects
	// are removed by full syncs. Empty means iptables.
	Backend state.RulesBackend
}

func (o Options) nft() bool { return o.Backend == state.BackendNFTables }

// Diff returns the operations that turn observed into desired.
func Diff(want, have *state.State, opt Options) *Plan {
	d := &differ{want: want, have: have, opt: opt}
	if want.Link && !have.Link {
		d.add(Op{Kind: EnsureLink})
	}
	if opt.Scope == nil && !opt.Cleanup {
		d.globals()
	}
	d.addresses()
	d.services()
	d.members()
	if opt.Cleanup {
		d.cleanup()
	}
	return d.plan()
}

type differ struct {
	want, have *state.State
	opt        Options
	// buckets holds the operations of each kind in chunks: a cold start at
	// 10,000 Services plans 165,000 operations, and growing one slice per
	// kind would copy and discard several times their size.
	buckets [numKinds][][]Op
	n       int
}

// maxChunk is the largest chunk of a bucket; chunks start small so that a
// partial sync's few operations cost little.
const maxChunk = 1024

func (d *differ) add(o Op) {
	b := &d.buckets[o.Kind]
	if len(*b) == 0 || len((*b)[len(*b)-1]) == cap((*b)[len(*b)-1]) {
		size := 4
		if len(*b) > 0 {
			size = min(maxChunk, 2*cap((*b)[len(*b)-1]))
		}
		*b = append(*b, make([]Op, 0, size))
	}
	last := &(*b)[len(*b)-1]
	*last = append(*last, o)
	d.n++
}

// plan concatenates the buckets in kind order, letting go of each chunk once copied.
func (d *differ) plan() *Plan {
	p := &Plan{Ops: make([]Op, 0, d.n)}
	for k := range d.buckets {
		for i, chunk := range d.buckets[k] {
			p.Ops = append(p.Ops, chunk...)
			d.buckets[k][i] = nil
		}
	}
	return p
}

// globals: sysctls, IPVS timeouts, sets, rules. Full syncs only.
func (d *differ) globals() {
	d.sysctlsAndTimeouts()
	if d.opt.nft() {
		d.nftGlobals()
		return
	}
	for _, name := range d.want.SortedSetNames() {
		if _, ok := d.have.Sets[name]; !ok {
			d.add(Op{Kind: CreateSet, Detail: &Detail{Set: d.want.Sets[name].SetSpec}})
		}
	}
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		w, ok := d.want.Rules[f]
		if ok && !w.Equal(d.have.Rules[f]) {
			d.add(Op{Kind: SyncRules, Detail: &Detail{Family: f, Restore: rules.Restore(w, d.have.Rules[f])}})
		}
	}
	d.nftLeftovers()
}

func (d *differ) sysctlsAndTimeouts() {
	for _, k := range sortedKeys(d.want.Sysctls) {
		if v := d.want.Sysctls[k]; d.have.Sysctls[k] != v {
			d.add(Op{Kind: SetSysctl, Detail: &Detail{Sysctl: k, Value: v}})
		}
	}
	if t := d.want.Timeouts; (t.TCP > 0 && t.TCP != d.have.Timeouts.TCP) ||
		(t.TCPFin > 0 && t.TCPFin != d.have.Timeouts.TCPFin) || (t.UDP > 0 && t.UDP != d.have.Timeouts.UDP) {
		d.add(Op{Kind: SetTimeouts, Detail: &Detail{Timeouts: t}})
	}
}

func (d *differ) addresses() {
	var keys []netip.Addr
	if d.opt.Scope != nil {
		keys = sortedAddrs(d.opt.Scope.Addresses)
	} else {
		keys = sortedAddrs(union(d.want.Addresses, d.have.Addresses))
	}
	for _, a := range keys {
		_, w := d.want.Addresses[a]
		_, h := d.have.Addresses[a]
		switch {
		case w && !h:
			d.add(Op{Kind: AddAddress, Detail: &Detail{Addr: a}})
		case h && !w:
			d.add(Op{Kind: DelAddress, Detail: &Detail{Addr: a}})
		}
	}
}

func (d *differ) services() {
	var keys []state.VSKey
	if d.opt.Scope != nil {
		for k := range d.opt.Scope.Services {
			keys = append(keys, k)
		}
	} else {
		for k := range union(d.want.Services, d.have.Services) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b state.VSKey) int { return order(a.Less(b), b.Less(a)) })
	for _, k := range keys {
		w, h := d.want.Services[k], d.have.Services[k]
		switch {
		case w != nil && h == nil:
			d.add(Op{Kind: AddVS, VS: w.VirtualServer})
			for _, rs := range w.SortedRealServers() {
				d.add(Op{Kind: AddRS, VS: w.VirtualServer, RS: rs})
			}
			d.udpFirstEndpoints(w, nil)
		case w != nil:
			if !w.SameConfig(h.VirtualServer) {
				d.add(Op{Kind: EditVS, VS: w.VirtualServer})
			}
			d.realServers(w, h)
		case h != nil && d.owned(k):
			d.add(Op{Kind: DelVS, VS: h.VirtualServer})
			if d.isUDP(k) {
				d.flush(h.VirtualServer, state.RealServer{})
			}
		}
	}
}

func (d *differ) realServers(w, h *state.Service) {
	for _, rs := range w.SortedRealServers() {
		o, ok := h.RealServers[rs.Key]
		switch {
		case !ok:
			d.add(Op{Kind: AddRS, VS: w.VirtualServer, RS: rs})
		case !rs.SameConfig(o):
			d.add(Op{Kind: EditRS, VS: w.VirtualServer, RS: rs})
		}
	}
	for _, rs := range h.SortedRealServers() {
		if _, ok := w.RealServers[rs.Key]; !ok {
			d.removeRS(w.VirtualServer, rs)
		}
	}
	d.udpFirstEndpoints(w, h)
}

// removeRS deletes a UDP real server at once (and its conntrack entries,
// since UDP has no connection end to wait for); a TCP or SCTP one is drained
// at weight 0 and deleted only once it has no connections left.
func (d *differ) removeRS(vs state.VirtualServer, rs state.RealServer) {
	switch {
	case d.isUDP(vs.Key):
		d.add(Op{Kind: DelRS, VS: vs, RS: rs})
		d.flush(vs, rs)
	case d.opt.ConnsKnown && rs.ActiveConns+rs.InactiveConns == 0:
		d.add(Op{Kind: DelRS, VS: vs, RS: rs})
	case rs.Weight != 0:
		drained := rs
		drained.Weight = 0
		d.add(Op{Kind: EditRS, VS: vs, RS: drained})
	}
}

// udpFirstEndpoints flushes conntrack entries of a UDP virtual server that
// gets its first real servers: entries created while it had none would
// otherwise keep new packets away from them.
func (d *differ) udpFirstEndpoints(w, h *state.Service) {
	if !d.isUDP(w.Key) || len(w.RealServers) == 0 || (h != nil && len(h.RealServers) > 0) {
		return
	}
	d.flush(w.VirtualServer, state.RealServer{})
}

// owned says whether an observed virtual server that nobody wants is ours to
// delete: its address is on kube-ipvs0, or our sets record it (a ClusterIP,
// external or load balancer address:port, an SCTP node address:port), or its
// port is one of our TCP/UDP node ports on an address the node has or had
// (so that NodePorts left on an address the node no longer serves them on go
// too, while another program's virtual server that shares a port number
// elsewhere stays); a firewall-mark one is ours when our mark set holds its
// mark. Nothing inside excludeCIDRs is ever ours.
func (d *differ) owned(k state.VSKey) bool {
	if d.opt.Scope != nil {
		return true // it was in a Service's fragment
	}
	if k.FWMark != 0 {
		return d.ownedMark(k)
	}
	for _, p := range d.opt.ExcludeCIDRs {
		if p.Contains(k.Addr) {
			return false
		}
	}
	if _, ok := d.have.Addresses[k.Addr]; ok {
		return true
	}
	f := state.FamilyOf(k.Addr)
	for _, base := range []string{desired.SetClusterIP, desired.SetExternalIP, desired.SetExternalIPLocal,
		desired.SetLoadBalancer, desired.SetLoadBalancerLocal, desired.SetNodePortSCTP} {
		if d.recorded(desired.SetName(base, f), state.SetEntry{Addr: k.Addr, Proto: k.Proto, Port: k.Port}) {
			return true
		}
	}
	base := map[state.Protocol]string{state.TCP: desired.SetNodePortTCP, state.UDP: desired.SetNodePortUDP}[k.Proto]
	return base != "" && d.opt.NodeAddresses[k.Addr] && d.recorded(desired.SetName(base, f), state.SetEntry{Port: k.Port})
}

func (d *differ) members() {
	if d.opt.Scope != nil {
		ms := make([]state.SetMember, 0, len(d.opt.Scope.Members))
		for m := range d.opt.Scope.Members {
			ms = append(ms, m)
		}
		slices.SortFunc(ms, func(a, b state.SetMember) int {
			if a.Set != b.Set {
				return order(a.Set < b.Set, b.Set < a.Set)
			}
			return order(a.Entry.Less(b.Entry), b.Entry.Less(a.Entry))
		})
		for _, m := range ms {
			d.member(m.Set, m.Entry)
		}
		return
	}
	owned := desired.OwnedSetNames()
	for _, name := range sortedKeys(union(d.want.Sets, d.have.Sets)) {
		if _, ours := owned[name]; !ours {
			continue
		}
		w, h := d.want.Sets[name], d.have.Sets[name]
		if w == nil {
			continue // a set of a family no longer served: left for cleanup
		}
		for _, e := range w.SortedEntries() {
			d.member(name, e)
		}
		if h != nil {
			for _, e := range h.SortedEntries() {
				if _, ok := w.Entries[e]; !ok {
					d.member(name, e)
				}
			}
		}
	}
}

func (d *differ) member(name string, e state.SetEntry) {
	var spec state.SetSpec
	w, h := d.want.Sets[name], d.have.Sets[name]
	inW, inH := false, false
	if w != nil {
		spec = w.SetSpec
		_, inW = w.Entries[e]
	}
	if h != nil {
		spec = h.SetSpec
		_, inH = h.Entries[e]
	}
	add, del := AddEntry, DelEntry
	if d.opt.nft() {
		add, del = NFTAddElement, NFTDelElement
	}
	switch {
	case inW && !inH:
		// a member there with another mark gets this one instead
		replace := spec.Marks && !d.opt.nft() && d.hasKey(h, e) // nft: the old one is deleted first (below)
		d.add(Op{Kind: add, Detail: &Detail{Set: spec, Entry: e, Replace: replace}})
	case inH && !inW:
		if spec.Marks && !d.opt.nft() && d.hasKey(w, e) {
			return // the wanted mark replaces this one (above)
		}
		d.add(Op{Kind: del, Detail: &Detail{Set: spec, Entry: e}})
	}
}

// hasKey reports whether set holds a member that e names, whatever its mark
// (sets with marks are small: one member per load balancer IP, external IP
// or node address and port of a Service port that has one).
func (d *differ) hasKey(set *state.Set, e state.SetEntry) bool {
	if set == nil {
		return false
	}
	for have := range set.Entries {
		if have.Key() == e.Key() {
			return true
		}
	}
	return false
}

// cleanup removes rules, sets and the link: everything ours that remains.
func (d *differ) cleanup() {
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		if r, ok := d.have.Rules[f]; ok {
			if r = rules.WithoutShared(r); len(r.Chains) > 0 || len(r.Jumps) > 0 {
				d.add(Op{Kind: DeleteRules, Detail: &Detail{Family: f, Restore: rules.Cleanup(r)}})
			}
		}
	}
	owned := desired.OwnedSetNames()
	ipsets := d.have.Sets
	if d.have.IPSets != nil {
		ipsets = d.have.IPSets // the sets observed are nftables'
	}
	for _, name := range sortedKeys(ipsets) {
		if _, ours := owned[name]; ours {
			d.add(Op{Kind: DestroySet, Detail: &Detail{Set: ipsets[name].SetSpec}})
		}
	}
	d.nftLeftovers()
	if d.have.Link {
		d.add(Op{Kind: DeleteLink})
	}
}
