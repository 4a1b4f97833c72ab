package rules

import (
	"slices"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Restore renders input for `iptables-restore --noflush` that turns the
// observed rule set into the desired one: every chain of ours is declared
// (which flushes it) and refilled, missing jumps are inserted at the top of
// their built-in chain, duplicate or stale jumps to our chains are deleted,
// and chains of ours that are no longer wanted (kube-proxy's that ipvs-proxy
// replaces) are flushed and deleted. Other chains and rules are untouched;
// each table changes atomically.
func Restore(desired, observed state.RuleSet) string {
	var b strings.Builder
	for _, table := range Tables {
		b.WriteString("*" + table + "\n")
		for _, c := range desired.Chains {
			if c.Table == table {
				b.WriteString(":" + c.Name + " - [0:0]\n")
			}
		}
		stale := staleChains(desired, observed, table)
		for _, name := range stale {
			b.WriteString(":" + name + " - [0:0]\n")
		}
		for _, c := range desired.Chains {
			if c.Table != table {
				continue
			}
			for _, r := range c.Rules {
				b.WriteString("-A " + c.Name + " " + r + "\n")
			}
		}
		want := map[state.Jump]int{}
		for _, j := range desired.Jumps {
			if j.Table == table {
				want[j]++
			}
		}
		for _, j := range observed.Jumps {
			if j.Table != table {
				continue
			}
			if want[j] > 0 {
				want[j]--
				continue
			}
			b.WriteString("-D " + j.From + " " + j.Rule + "\n")
		}
		// insert in reverse so that the jumps end up in desired order at the top
		for i := len(desired.Jumps) - 1; i >= 0; i-- {
			j := desired.Jumps[i]
			if j.Table == table && want[j] > 0 {
				want[j]--
				b.WriteString("-I " + j.From + " " + j.Rule + "\n")
			}
		}
		for _, name := range stale {
			b.WriteString("-X " + name + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// staleChains lists the observed chains of table that desired lacks.
func staleChains(desired, observed state.RuleSet, table string) []string {
	var out []string
	for _, c := range observed.Chains {
		if c.Table == table && !slices.ContainsFunc(desired.Chains, func(d state.Chain) bool { return d.Table == table && d.Name == c.Name }) {
			out = append(out, c.Name)
		}
	}
	return out
}

// Cleanup renders restore input that removes the jumps to our chains and
// then the chains themselves.
func Cleanup(observed state.RuleSet) string {
	var b strings.Builder
	for _, table := range Tables {
		b.WriteString("*" + table + "\n")
		for _, j := range observed.Jumps {
			if j.Table == table {
				b.WriteString("-D " + j.From + " " + j.Rule + "\n")
			}
		}
		for _, c := range observed.Chains {
			if c.Table == table {
				b.WriteString(":" + c.Name + " - [0:0]\n")
			}
		}
		for _, c := range observed.Chains {
			if c.Table == table {
				b.WriteString("-X " + c.Name + "\n")
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}
