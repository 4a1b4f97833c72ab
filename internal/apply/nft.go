package apply

import (
	"fmt"
	"strings"

	"sigs.k8s.io/knftables"

	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/plan"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules/nft"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// setNames maps the state's sets to the nft sets that stand for them.
func setNames() *nft.Names {
	return nft.NewNames(desired.SetSpecs(state.IPv4), desired.SetSpecs(state.IPv6))
}

// nftables runs a plan's nftables operations: one transaction per family,
// all of it or none. In each transaction the table's structure comes first
// (sets, chains, then the chains' rules), then the elements deleted (before
// those added: two prefixes of an interval set may not overlap), then the
// elements added, and last the chains and sets that are not wanted.
func (a *Applier) nftables(ops []plan.Op, done []bool, r *Result, fail func(int, error)) {
	if a.k.NFTables == nil {
		for i := range ops {
			fail(i, fmt.Errorf("no nftables on this node (nft not found)"))
		}
		return
	}
	names := setNames()
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		var idx []int
		for i, o := range ops {
			if opFamily(o) == f {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			continue
		}
		tx := nftTransaction(f, ops, idx, names)
		r.Messages++
		if err := a.k.NFTables.Run(f, tx); err != nil {
			if len(idx) == 1 && ops[idx[0]].Kind == plan.NFTDeleteTable && knftables.IsNotFound(err) {
				done[idx[0]] = true // gone already
				continue
			}
			what := describeNFT(ops[idx[0]])
			if len(idx) > 1 {
				what += fmt.Sprintf(", and %d more", len(idx)-1)
			}
			fail(idx[0], fmt.Errorf("nftables transaction on table %s %s (%s): %w", nft.Family(f), nft.TableName, what, err))
			continue
		}
		for _, i := range idx {
			done[i] = true
		}
	}
}

func opFamily(o plan.Op) state.Family {
	switch o.Kind {
	case plan.NFTCreateSet, plan.NFTAddElement, plan.NFTDelElement:
		return o.Set.Family
	}
	return o.Family
}

// nftTransaction orders the ops idx of family f into one transaction.
func nftTransaction(f state.Family, ops []plan.Op, idx []int, names *nft.Names) []kernel.NFTOp {
	var structure, rules, dels, adds, removals []kernel.NFTOp
	for _, i := range idx {
		o := ops[i]
		switch o.Kind {
		case plan.NFTCreateSet:
			structure = append(structure, kernel.NFTOp{Verb: kernel.NFTAdd, Obj: setObject(names.NFT(o.Set.Name), o.Set)})
		case plan.NFTSyncChain:
			ch := chainObject(f, o.Chain)
			structure = append(structure, kernel.NFTOp{Verb: kernel.NFTAdd, Obj: ch})
			rules = append(rules, kernel.NFTOp{Verb: kernel.NFTFlush, Obj: chainObject(f, state.NFTChain{Name: o.Chain.Name})})
			for _, r := range ruleObjects(f, o.Chain) {
				rules = append(rules, kernel.NFTOp{Verb: kernel.NFTAdd, Obj: r})
			}
		case plan.NFTDelElement:
			// nft has no "delete if present" before 1.0.8 and Linux 6.3:
			// adding first makes the delete succeed either way.
			e := elementObject(names.NFT(o.Set.Name), o.Set, o.Entry)
			dels = append(dels, kernel.NFTOp{Verb: kernel.NFTAdd, Obj: e}, kernel.NFTOp{Verb: kernel.NFTDelete, Obj: e})
		case plan.NFTAddElement:
			adds = append(adds, kernel.NFTOp{Verb: kernel.NFTAdd, Obj: elementObject(names.NFT(o.Set.Name), o.Set, o.Entry)})
		case plan.NFTDeleteChain:
			c := chainObject(f, state.NFTChain{Name: o.Chain.Name})
			removals = append(removals, kernel.NFTOp{Verb: kernel.NFTFlush, Obj: c}, kernel.NFTOp{Verb: kernel.NFTDelete, Obj: c})
		case plan.NFTDeleteSet:
			var obj knftables.Object = &knftables.Set{Family: knftables.Family(nft.Family(f)), Table: nft.TableName, Name: o.NFTName}
			if name, ok := strings.CutPrefix(o.NFTName, state.NFTMapPrefix); ok {
				obj = &knftables.Map{Family: knftables.Family(nft.Family(f)), Table: nft.TableName, Name: name}
			}
			removals = append(removals, kernel.NFTOp{Verb: kernel.NFTDelete, Obj: obj})
		case plan.NFTDeleteTable:
			removals = append(removals, kernel.NFTOp{Verb: kernel.NFTDelete, Obj: &knftables.Table{Family: knftables.Family(nft.Family(f)), Name: nft.TableName}})
		}
	}
	var tx []kernel.NFTOp
	if len(structure) > 0 {
		tx = append(tx, kernel.NFTOp{Verb: kernel.NFTAdd, Obj: tableObject(f)})
	}
	for _, part := range [][]kernel.NFTOp{structure, rules, dels, adds, removals} {
		tx = append(tx, part...)
	}
	return tx
}

func tableObject(f state.Family) *knftables.Table {
	return &knftables.Table{Family: knftables.Family(nft.Family(f)), Name: nft.TableName, Comment: knftables.PtrTo("rules of ipvs-proxy around IPVS")}
}

// chainObject is a chain, with its hook when it is a base chain.
func chainObject(f state.Family, c state.NFTChain) *knftables.Chain {
	ch := &knftables.Chain{Family: knftables.Family(nft.Family(f)), Table: nft.TableName, Name: c.Name}
	if b := c.Base; b != nil {
		ch.Type = knftables.PtrTo(knftables.BaseChainType(b.Type))
		ch.Hook = knftables.PtrTo(knftables.BaseChainHook(b.Hook))
		ch.Priority = knftables.PtrTo(knftables.BaseChainPriority(b.Priority))
	}
	return ch
}

// ruleObjects are a chain's rules, each with its ID as comment.
func ruleObjects(f state.Family, c state.NFTChain) []*knftables.Rule {
	out := make([]*knftables.Rule, len(c.Rules))
	for i, r := range c.Rules {
		out[i] = &knftables.Rule{Family: knftables.Family(nft.Family(f)), Table: nft.TableName, Chain: c.Name, Rule: r.Text, Comment: knftables.PtrTo(r.ID)}
	}
	return out
}

// setObject is the nft set (or map, for an ipset whose members carry a
// mark) named name that stands for the ipset spec.
func setObject(name string, spec state.SetSpec) knftables.Object {
	typ, flags := nft.SetType(spec)
	if nft.IsMap(spec) {
		m := &knftables.Map{Family: knftables.Family(nft.Family(spec.Family)), Table: nft.TableName, Name: name, Type: typ}
		if spec.Comment != "" {
			m.Comment = knftables.PtrTo(spec.Comment)
		}
		return m
	}
	s := &knftables.Set{Family: knftables.Family(nft.Family(spec.Family)), Table: nft.TableName, Name: name, Type: typ}
	for _, fl := range flags {
		s.Flags = append(s.Flags, knftables.SetFlag(fl))
	}
	if spec.Comment != "" {
		s.Comment = knftables.PtrTo(spec.Comment)
	}
	return s
}

// elementObject is a member of the nft set named name.
func elementObject(name string, spec state.SetSpec, e state.SetEntry) *knftables.Element {
	el := &knftables.Element{Family: knftables.Family(nft.Family(spec.Family)), Table: nft.TableName, Key: nft.Key(spec.Type, e)}
	if nft.IsMap(spec) {
		el.Map, el.Value = name, nft.Value(e)
	} else {
		el.Set = name
	}
	return el
}

// describeNFT says in words what an nftables operation does.
func describeNFT(o plan.Op) string {
	table := func(f state.Family) string { return "table " + nft.Family(f) + " " + nft.TableName }
	switch o.Kind {
	case plan.NFTCreateSet:
		return fmt.Sprintf("add set %s (for %s) to %s", setNames().NFT(o.Set.Name), o.Set.Name, table(o.Set.Family))
	case plan.NFTAddElement:
		return fmt.Sprintf("add %s to set %s of %s", o.Entry.Format(o.Set.Type), setNames().NFT(o.Set.Name), table(o.Set.Family))
	case plan.NFTDelElement:
		return fmt.Sprintf("delete %s from set %s of %s", o.Entry.Format(o.Set.Type), setNames().NFT(o.Set.Name), table(o.Set.Family))
	case plan.NFTSyncChain:
		return fmt.Sprintf("write chain %s of %s", o.Chain.Name, table(o.Family))
	case plan.NFTDeleteChain:
		return fmt.Sprintf("delete chain %s of %s", o.Chain.Name, table(o.Family))
	case plan.NFTDeleteSet:
		return fmt.Sprintf("delete set %s of %s", o.NFTName, table(o.Family))
	case plan.NFTDeleteTable:
		return "delete " + table(o.Family)
	}
	return o.String()
}

// CheckNFTables asks the kernel, without changing anything, whether it can
// hold the tables want describes: the table, its sets and chains with every
// rule (nft --check), which needs nf_tables and the expressions the rules
// use (nat, masquerade, reject, fib, ct, concatenated and interval sets).
func CheckNFTables(k kernel.Kernel, want *state.State) error {
	if k.NFTables == nil {
		return fmt.Errorf("nft is not usable on this node")
	}
	have := state.New()
	p := plan.Diff(want, have, plan.Options{Backend: state.BackendNFTables})
	names := setNames()
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		var idx []int
		for i, o := range p.Ops {
			if o.Kind.Subsystem() == plan.SubNFTables && opFamily(o) == f {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			continue
		}
		if err := k.NFTables.Check(f, nftTransaction(f, p.Ops, idx, names)); err != nil {
			return fmt.Errorf("table %s %s: %w", nft.Family(f), nft.TableName, err)
		}
	}
	return nil
}
