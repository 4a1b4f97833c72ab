// Package apply is the side-effect stage: it runs a plan's operations
// against the kernel interfaces and reads the kernel back into a State.
//
// Consecutive operations on the same subsystem go to the kernel as one
// pipelined batch. Applying is idempotent: adding what is already there
// becomes an edit, deleting what is already gone counts as done. Every
// failure is wrapped with what was being done and returned; nothing stops
// at the first error.
package apply

import (
	"fmt"
	"syscall"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/plan"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Result says what happened to each operation of a plan.
type Result struct {
	// Done[i] is true when plan op i is in effect in the kernel.
	Done []bool
	// Errors holds one wrapped error per failed operation.
	Errors []error
	// ErrOf maps the index of each failed plan op to its error (as in Errors).
	ErrOf map[int]error
	// Applied counts successful operations by kind.
	Applied map[plan.Kind]int
	// Messages counts the kernel write requests sent (including retried adds as edits).
	Messages int
	// Took is the time spent in each subsystem, summed over its batches.
	Took map[plan.Subsystem]time.Duration
}

// Failed returns the number of failed operations.
func (r *Result) Failed() int { return len(r.Errors) }

// Applier runs plans against a kernel.
type Applier struct {
	k kernel.Kernel
}

// New returns an Applier over the kernel interfaces.
func New(k kernel.Kernel) *Applier { return &Applier{k: k} }

// Apply runs every operation of p in order.
func (a *Applier) Apply(p *plan.Plan) *Result {
	r := &Result{Done: make([]bool, len(p.Ops)), Applied: map[plan.Kind]int{}, Took: map[plan.Subsystem]time.Duration{}}
	for i := 0; i < len(p.Ops); {
		j := i + 1
		for j < len(p.Ops) && batchable(p.Ops[i].Kind, p.Ops[j].Kind) {
			j++
		}
		start := time.Now()
		a.run(p.Ops[i:j], i, r.Done[i:j], r)
		r.Took[p.Ops[i].Kind.Subsystem()] += time.Since(start)
		i = j
	}
	for i, op := range p.Ops {
		if r.Done[i] {
			r.Applied[op.Kind]++
		}
	}
	return r
}

// batchable says whether two consecutive kinds go to the kernel together.
func batchable(a, b plan.Kind) bool {
	group := func(k plan.Kind) int {
		switch k {
		case plan.AddVS, plan.EditVS, plan.AddRS, plan.EditRS, plan.DelRS, plan.DelVS:
			return 1
		case plan.AddEntry, plan.DelEntry:
			return 2
		case plan.AddAddress, plan.DelAddress:
			return 3
		case plan.FlushConntrack:
			return 4
		case plan.NFTCreateSet, plan.NFTSyncChain, plan.NFTAddElement, plan.NFTDelElement, plan.NFTDeleteChain, plan.NFTDeleteSet:
			return 5 // one transaction per family
		}
		return 0
	}
	return group(a) != 0 && group(a) == group(b)
}

func (a *Applier) run(ops []plan.Op, base int, done []bool, r *Result) {
	fail := func(i int, err error) {
		e := fmt.Errorf("%s: %w", Describe(ops[i]), err)
		r.Errors = append(r.Errors, e)
		if r.ErrOf == nil {
			r.ErrOf = map[int]error{}
		}
		r.ErrOf[base+i] = e
	}
	one := func(err error) {
		r.Messages++
		if err == nil {
			done[0] = true
		} else {
			fail(0, err)
		}
	}
	switch op := ops[0]; op.Kind {
	case plan.AddVS, plan.EditVS, plan.AddRS, plan.EditRS, plan.DelRS, plan.DelVS:
		a.ipvs(ops, done, r, fail)
	case plan.AddEntry, plan.DelEntry:
		a.sets(ops, done, r, fail)
	case plan.AddAddress, plan.DelAddress:
		a.addresses(ops, done, r, fail)
	case plan.NFTCreateSet, plan.NFTSyncChain, plan.NFTAddElement, plan.NFTDelElement, plan.NFTDeleteChain, plan.NFTDeleteSet, plan.NFTDeleteTable:
		a.nftables(ops, done, r, fail)
	case plan.FlushConntrack:
		filters := make([]kernel.ConntrackFilter, len(ops))
		for i, o := range ops {
			filters[i] = kernel.ConntrackFilter{Proto: o.VS.Key.Proto, VIP: o.VS.Key.Addr, Port: o.VS.Key.Port, RS: o.RS.Key.Addr}
		}
		r.Messages++
		if err := a.k.Conntrack.Flush(filters); err != nil {
			fail(0, err)
			return
		}
		for i := range done {
			done[i] = true
		}
	case plan.EnsureLink:
		one(a.k.Link.EnsureLink())
	case plan.DeleteLink:
		one(a.k.Link.DeleteLink())
	case plan.SetSysctl:
		one(a.k.Sysctl.Set(op.Sysctl, op.Value))
	case plan.SetTimeouts:
		one(a.k.IPVS.SetTimeouts(op.Timeouts))
	case plan.CreateSet:
		err := a.k.IPSet.Create(op.Set)
		if kernel.AlreadyExists(err) {
			err = nil
		}
		one(err)
	case plan.DestroySet:
		err := a.k.IPSet.Destroy(op.Set.Name)
		if kernel.AlreadyGone(err) {
			err = nil
		}
		one(err)
	case plan.SyncRules, plan.DeleteRules:
		one(a.k.IPTables.Restore(op.Family, op.Restore))
	default:
		fail(0, syscall.EINVAL)
	}
}

// ipvsChunk is the most IPVS writes converted and handed to the kernel
// interface at once: a cold start at 10,000 Services has 150,000, whose
// requests would otherwise all be held at once (tens of MB).
const ipvsChunk = 4096

// ipvs runs a batch of IPVS writes, in chunks of ipvsChunk.
func (a *Applier) ipvs(ops []plan.Op, done []bool, r *Result, fail func(int, error)) {
	for start := 0; start < len(ops); start += ipvsChunk {
		end := min(len(ops), start+ipvsChunk)
		a.ipvsBatch(ops[start:end], done[start:end], r, func(i int, err error) { fail(start+i, err) })
	}
}

// ipvsBatch runs IPVS writes; adds that find the object present are retried
// as edits in a second batch, deletes that find it gone are done.
func (a *Applier) ipvsBatch(ops []plan.Op, done []bool, r *Result, fail func(int, error)) {
	cmds := make([]kernel.IPVSOp, len(ops))
	for i, o := range ops {
		cmds[i] = kernel.IPVSOp{Cmd: ipvsCmd(o.Kind), VS: o.VS, RS: o.RS}
	}
	r.Messages += len(cmds)
	errs := a.k.IPVS.Exec(cmds)
	var retry []kernel.IPVSOp
	var retryIdx []int
	for i, err := range errs {
		switch {
		case err == nil:
			done[i] = true
		case kernel.AlreadyExists(err) && (cmds[i].Cmd == kernel.AddService || cmds[i].Cmd == kernel.AddDest):
			edit := cmds[i]
			edit.Cmd++ // AddService→EditService, AddDest→EditDest
			retry, retryIdx = append(retry, edit), append(retryIdx, i)
		case kernel.AlreadyGone(err) && (cmds[i].Cmd == kernel.DelService || cmds[i].Cmd == kernel.DelDest):
			done[i] = true
		default:
			fail(i, err)
		}
	}
	if len(retry) == 0 {
		return
	}
	r.Messages += len(retry)
	for n, err := range a.k.IPVS.Exec(retry) {
		if err == nil {
			done[retryIdx[n]] = true
		} else {
			fail(retryIdx[n], err)
		}
	}
}

func ipvsCmd(k plan.Kind) kernel.IPVSCmd {
	switch k {
	case plan.AddVS:
		return kernel.AddService
	case plan.EditVS:
		return kernel.EditService
	case plan.DelVS:
		return kernel.DelService
	case plan.AddRS:
		return kernel.AddDest
	case plan.EditRS:
		return kernel.EditDest
	}
	return kernel.DelDest
}

func (a *Applier) sets(ops []plan.Op, done []bool, r *Result, fail func(int, error)) {
	cmds := make([]kernel.SetOp, len(ops))
	for i, o := range ops {
		cmds[i] = kernel.SetOp{Add: o.Kind == plan.AddEntry, Set: o.Set, Entry: o.Entry, Replace: o.Replace}
	}
	r.Messages += len(cmds)
	for i, err := range a.k.IPSet.Exec(cmds) {
		// ipset answers IPSET_ERR_EXIST both for "already added" and "not there"
		if err == nil || (cmds[i].Add && kernel.AlreadyExists(err)) || (!cmds[i].Add && kernel.AlreadyGone(err)) {
			done[i] = true
		} else {
			fail(i, err)
		}
	}
}

func (a *Applier) addresses(ops []plan.Op, done []bool, r *Result, fail func(int, error)) {
	cmds := make([]kernel.AddrOp, len(ops))
	for i, o := range ops {
		cmds[i] = kernel.AddrOp{Add: o.Kind == plan.AddAddress, Addr: o.Addr}
	}
	r.Messages += len(cmds)
	for i, err := range a.k.Link.Exec(cmds) {
		if err == nil || (cmds[i].Add && kernel.AlreadyExists(err)) || (!cmds[i].Add && kernel.AlreadyGone(err)) {
			done[i] = true
		} else {
			fail(i, err)
		}
	}
}

// Describe says in words what an operation does, for errors and logs:
// "add real server 10.244.1.7:80 to TCP 10.96.0.10:53 (kube-system/kube-dns:dns)".
func Describe(o plan.Op) string {
	vs := o.VS.Key.String()
	if o.VS.Origin.Service != "" {
		vs += " (" + o.VS.Origin.String() + ")"
	}
	switch o.Kind {
	case plan.AddVS:
		return "add virtual server " + vs
	case plan.EditVS:
		return "update virtual server " + vs
	case plan.DelVS:
		return "delete virtual server " + vs
	case plan.AddRS:
		return fmt.Sprintf("add real server %s to %s", o.RS.Key, vs)
	case plan.EditRS:
		return fmt.Sprintf("set weight %d of real server %s of %s", o.RS.Weight, o.RS.Key, vs)
	case plan.DelRS:
		return fmt.Sprintf("delete real server %s of %s", o.RS.Key, vs)
	case plan.AddEntry:
		return fmt.Sprintf("add %s to ipset %s", o.Entry.Format(o.Set.Type), o.Set.Name)
	case plan.DelEntry:
		return fmt.Sprintf("delete %s from ipset %s", o.Entry.Format(o.Set.Type), o.Set.Name)
	case plan.CreateSet:
		return fmt.Sprintf("create ipset %s (%s)", o.Set.Name, o.Set.Type)
	case plan.DestroySet:
		return "destroy ipset " + o.Set.Name
	case plan.AddAddress:
		return fmt.Sprintf("bind %s to %s", state.HostPrefix(o.Addr), state.LinkName)
	case plan.DelAddress:
		return fmt.Sprintf("unbind %s from %s", state.HostPrefix(o.Addr), state.LinkName)
	case plan.EnsureLink:
		return "create dummy link " + state.LinkName
	case plan.DeleteLink:
		return "delete link " + state.LinkName
	case plan.SetSysctl:
		return fmt.Sprintf("set sysctl %s=%s", o.Sysctl, o.Value)
	case plan.SetTimeouts:
		return "set IPVS timeouts"
	case plan.SyncRules:
		return fmt.Sprintf("restore iptables rules (IPv%d)", o.Family)
	case plan.DeleteRules:
		return fmt.Sprintf("delete iptables rules (IPv%d)", o.Family)
	case plan.FlushConntrack:
		return "flush conntrack entries of " + vs
	}
	return describeNFT(o)
}
