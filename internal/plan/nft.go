package plan

import (
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// nftGlobals plans ipvs-proxy's nftables tables: the missing sets, the
// chains whose rules differ (rewritten whole), the chains and sets of the
// table that are not wanted; then what the iptables backend left: its
// rules, then its ipsets, once the tables are in place. Full syncs only.
func (d *differ) nftGlobals() {
	for _, f := range families(d.want.Tables) {
		w, h := d.want.Tables[f], d.have.Tables[f]
		for _, name := range d.want.SortedSetNames() {
			spec := d.want.Sets[name].SetSpec
			if _, ok := d.have.Sets[name]; !ok && spec.Family == f {
				d.add(Op{Kind: NFTCreateSet, Detail: &Detail{Set: spec}})
			}
		}
		for _, c := range w.Chains {
			if hc, ok := h.Chain(c.Name); !ok || !c.SameRules(hc) {
				d.add(Op{Kind: NFTSyncChain, Detail: &Detail{Family: f, Chain: c}})
			}
		}
		for _, c := range h.Chains {
			if _, ok := w.Chain(c.Name); !ok {
				d.add(Op{Kind: NFTDeleteChain, Detail: &Detail{Family: f, Chain: state.NFTChain{Name: c.Name}}})
			}
		}
		for _, name := range h.OtherSets {
			d.add(Op{Kind: NFTDeleteSet, Detail: &Detail{Family: f, NFTName: name}})
		}
	}
	d.iptablesLeftovers()
}

// iptablesLeftovers removes the iptables rules and ipsets of ours that the
// iptables backend left. Without the iptables tools (no rules observed) the
// ipsets stay: rules nobody can see may still use them, and destroying a
// set in use fails every sync.
func (d *differ) iptablesLeftovers() {
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		if r, ok := d.have.Rules[f]; ok && (len(r.Chains) > 0 || len(r.Jumps) > 0) {
			d.add(Op{Kind: DeleteRules, Detail: &Detail{Family: f, Restore: rules.Cleanup(r)}})
		}
	}
	if _, ok := d.have.Rules[state.IPv4]; !ok {
		return
	}
	owned := desired.OwnedSetNames()
	for _, name := range sortedKeys(d.have.IPSets) {
		if _, ours := owned[name]; ours {
			d.add(Op{Kind: DestroySet, Detail: &Detail{Set: d.have.IPSets[name].SetSpec}})
		}
	}
}

// nftLeftovers removes the tables the nftables backend left.
func (d *differ) nftLeftovers() {
	for _, f := range families(d.have.Tables) {
		d.add(Op{Kind: NFTDeleteTable, Detail: &Detail{Family: f}})
	}
}

func families[V any](m map[state.Family]V) []state.Family {
	var out []state.Family
	for f := range m {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// recorded says whether a set of ours records the entry: the set of the
// rules backend in use, or the ipset of that name the iptables backend left
// (a virtual server recorded only there is still ours).
func (d *differ) recorded(name string, e state.SetEntry) bool {
	for _, sets := range []map[string]*state.Set{d.have.Sets, d.have.IPSets} {
		if set := sets[name]; set != nil {
			if _, ok := set.Entries[e]; ok {
				return true
			}
		}
	}
	return false
}
