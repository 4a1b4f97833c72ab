//go:build linux && privileged

package iptables

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch/nstest"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

func TestMain(m *testing.M) { nstest.Main(m) }

const smallRuleSet = `*nat
:KUBE-SERVICES - [0:0]
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment "a \"quoted\" comment" -j ACCEPT
-A OUTPUT -j KUBE-SERVICES
COMMIT
*filter
:KUBE-FORWARD - [0:0]
-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT
COMMIT
`

func TestPrivilegedRestoreSave(t *testing.T) {
	ipt := New(Config{})
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		input := smallRuleSet
		if f == state.IPv6 {
			input = strings.ReplaceAll(input, "10.96.0.10/32", "fd00::a/128")
		}
		if err := ipt.Restore(f, input); err != nil {
			t.Fatalf("ipv%d: %v", f, err)
		}
		save, err := ipt.Save(f)
		if err != nil {
			t.Fatal(err)
		}
		rs := rules.Parse(save)
		if len(rs.Chains) != 2 || rs.Chains[0].Name != "KUBE-SERVICES" || len(rs.Chains[0].Rules) != 1 || rs.Chains[1].Name != "KUBE-FORWARD" {
			t.Errorf("ipv%d: parsed %+v from:\n%s", f, rs, save)
		}
		if len(rs.Jumps) != 1 || rs.Jumps[0].From != "OUTPUT" {
			t.Errorf("ipv%d: jumps %+v", f, rs.Jumps)
		}
		// --noflush: a second restore of other chains leaves these alone.
		if err := ipt.Restore(f, "*nat\n:KUBE-POSTROUTING - [0:0]\nCOMMIT\n"); err != nil {
			t.Fatal(err)
		}
		save, _ = ipt.Save(f)
		if !strings.Contains(save, "-A OUTPUT -j KUBE-SERVICES") || !strings.Contains(save, ":KUBE-POSTROUTING") {
			t.Errorf("ipv%d: after a second restore:\n%s", f, save)
		}
	}
}

func TestPrivilegedRestoreError(t *testing.T) {
	err := New(Config{}).Restore(state.IPv4, "*nat\n-A NO-SUCH-CHAIN -j ACCEPT\nCOMMIT\n")
	if err == nil || !strings.Contains(err.Error(), "line") {
		t.Errorf("Restore of a rule in a missing chain = %v, want iptables-restore's complaint", err)
	}
	t.Log(err)
}

// The rules ipvs-proxy computes must come back from iptables-save exactly as
// computed, or every sync would rewrite them.
// Both backends: Debian's alternatives pick nft, a node may use legacy.
func TestPrivilegedDesiredRulesRoundTrip(t *testing.T) {
	sets := ipset.New(ipset.Config{})
	if err := sets.Open(); err != nil {
		t.Fatal(err)
	}
	defer sets.Close()
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		for _, spec := range desired.SetSpecs(f) {
			if err := sets.Create(spec); err != nil {
				t.Fatalf("create set %s: %v", spec.Name, err)
			}
		}
	}
	for _, backend := range []string{"nft", "legacy"} {
		tool := func(f, verb string) string { return f + "tables-" + backend + "-" + verb }
		if _, err := exec.LookPath(tool("ip", "save")); err != nil {
			t.Logf("no %s backend: %v", backend, err)
			continue
		}
		ipt := New(Config{
			IPv4: Tools{Save: tool("ip", "save"), Restore: tool("ip", "restore")},
			IPv6: Tools{Save: tool("ip6", "save"), Restore: tool("ip6", "restore")},
		})
		t.Run(backend, func(t *testing.T) { roundTrip(t, ipt) })
	}
}

func roundTrip(t *testing.T, ipt *IPTables) {
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		notLocal := "! -s 10.244.0.0/16"
		if f == state.IPv6 {
			notLocal = "! -s fd00:10:244::/56"
		}
		want := withoutIPVSMatch(t, rules.Build(rules.Params{
			Family: f, MasqueradeBit: 14, NotLocal: notLocal, Local: strings.TrimPrefix(notLocal, "! "),
			SetName: func(b string) string { return desired.SetName(b, f) },
		}))
		save, err := ipt.Save(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := ipt.Restore(f, rules.Restore(want, rules.Parse(save))); err != nil {
			t.Fatalf("ipv%d: %v", f, err)
		}
		if save, err = ipt.Save(f); err != nil {
			t.Fatal(err)
		}
		got := rules.Parse(save)
		if !got.Equal(want) {
			t.Errorf("ipv%d: iptables-save does not give back the computed rules", f)
			for i := range max(len(got.Chains), len(want.Chains)) {
				var g, w state.Chain
				if i < len(got.Chains) {
					g = got.Chains[i]
				}
				if i < len(want.Chains) {
					w = want.Chains[i]
				}
				for j := range max(len(g.Rules), len(w.Rules)) {
					var gr, wr string
					if j < len(g.Rules) {
						gr = g.Rules[j]
					}
					if j < len(w.Rules) {
						wr = w.Rules[j]
					}
					if gr != wr {
						t.Errorf("  %s/%s rule %d:\n   got  %s\n   want %s", w.Table, w.Name, j, gr, wr)
					}
				}
			}
		}
	}
}

// withoutIPVSMatch drops the rules that match IPVS connections (-m ipvs)
// when this kernel has no IPVS, as the development machines' kernels: the
// xt_ipvs match needs it. The VM's end-to-end scenarios run them for real.
func withoutIPVSMatch(t *testing.T, rs state.RuleSet) state.RuleSet {
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		return rs
	}
	t.Log("no IPVS in this kernel: rules with -m ipvs left out")
	out := state.RuleSet{Jumps: rs.Jumps}
	for _, c := range rs.Chains {
		c.Rules = slices.DeleteFunc(slices.Clone(c.Rules), func(r string) bool { return strings.Contains(r, "-m ipvs ") })
		out.Chains = append(out.Chains, c)
	}
	return out
}
