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
		for j < len(p.Ops) && plan.Batchable(p.Ops[i].Kind, p.Ops[j].Kind) {
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
	if op := ops[0]; op.Kind.IpvsadmFlag() != "" {
		a.ipvs(ops, done, r, fail)
		return
	}
	switch op := ops[0]; op.Kind {
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
		one(idempotent(op.Kind, a.k.IPSet.Create(op.Set)))
	case plan.DestroySet:
		one(idempotent(op.Kind, a.k.IPSet.Destroy(op.Set.Name)))
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
		cmds[i] = kernel.IPVSOp{Cmd: kernel.IPVSCommand(o.Kind.IpvsadmFlag()), VS: o.VS, RS: o.RS}
	}
	r.Messages += len(cmds)
	errs := a.k.IPVS.Exec(cmds)
	var retry []kernel.IPVSOp
	var retryIdx []int
	for i, err := range errs {
		kind := ops[i].Kind
		switch {
		case idempotent(kind, err) == nil:
			done[i] = true
		case kernel.AlreadyExists(err) && kind.RetryAs() != kind:
			edit := cmds[i]
			edit.Cmd = kernel.IPVSCommand(kind.RetryAs().IpvsadmFlag()) // AddService→EditService, AddDest→EditDest
			retry, retryIdx = append(retry, edit), append(retryIdx, i)
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

// idempotent returns nil for an operation that found its object already
// there or already gone when its kind counts that as done, err otherwise.
// (ipset answers IPSET_ERR_EXIST both for "already added" and "not there".)
func idempotent(k plan.Kind, err error) error {
	if err == nil || (k.ExistsIsDone() && kernel.AlreadyExists(err)) || (k.GoneIsDone() && kernel.AlreadyGone(err)) {
		return nil
	}
	return err
}

func (a *Applier) sets(ops []plan.Op, done []bool, r *Result, fail func(int, error)) {
	cmds := make([]kernel.SetOp, len(ops))
	for i, o := range ops {
		cmds[i] = kernel.SetOp{Add: o.Kind == plan.AddEntry, Set: o.Set, Entry: o.Entry, Replace: o.Replace}
	}
	r.Messages += len(cmds)
	for i, err := range a.k.IPSet.Exec(cmds) {
		if idempotent(ops[i].Kind, err) == nil {
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
		if idempotent(ops[i].Kind, err) == nil {
			done[i] = true
		} else {
			fail(i, err)
		}
	}
}

// Describe says in words what an operation does, for errors and logs:
// "add real server 10.244.1.7:80 to TCP 10.96.0.10:53 (kube-system/kube-dns:dns)".
func Describe(o plan.Op) string {
	if o.Kind.Subsystem() == plan.SubNFTables {
		return describeNFT(o) // the nft names live in internal/rules/nft
	}
	return plan.Describe(o)
}
