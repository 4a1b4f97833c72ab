package rules

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// What kube-proxy's iptables mode leaves (trimmed), next to what
// ipvs-proxy wrote: its KUBE-SERVICES jumps to its KUBE-SVC-* chains, which
// jump to KUBE-MARK-MASQ.
const iptablesModeSave = `*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-NPX46M4PTMTKRN6Y - [0:0]
:KUBE-SEP-ABC - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-LOAD-BALANCER - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y
-A KUBE-SVC-NPX46M4PTMTKRN6Y ! -s 10.244.0.0/16 -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j KUBE-MARK-MASQ
-A KUBE-SVC-NPX46M4PTMTKRN6Y -j KUBE-SEP-ABC
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ
COMMIT
*filter
:INPUT ACCEPT [0:0]
:KUBE-FORWARD - [0:0]
COMMIT
`

// cleanup leaves the chains kube-proxy's iptables mode still uses, and the
// jumps into them; it removes the others.
func TestSharedChainsAreLeft(t *testing.T) {
	rs := Parse(iptablesModeSave)
	want := map[string]string{
		"nat/KUBE-SERVICES":  "its rules jump to chain KUBE-SVC-NPX46M4PTMTKRN6Y",
		"nat/KUBE-MARK-MASQ": "chain KUBE-SVC-NPX46M4PTMTKRN6Y jumps to it",
	}
	if !maps.Equal(rs.Shared, want) {
		t.Fatalf("shared chains %v, want %v", rs.Shared, want)
	}
	restore := Cleanup(WithoutShared(rs))
	for _, gone := range []string{"-X KUBE-POSTROUTING", "-X KUBE-LOAD-BALANCER", "-X KUBE-FORWARD", "-D POSTROUTING"} {
		if !strings.Contains(restore, gone) {
			t.Errorf("cleanup does not remove %q:\n%s", gone, restore)
		}
	}
	for _, kept := range []string{"KUBE-SERVICES", "KUBE-MARK-MASQ"} {
		if strings.Contains(restore, kept) {
			t.Errorf("cleanup touches %s, which kube-proxy's iptables mode still uses:\n%s", kept, restore)
		}
	}
	ours := Restore(Build(NewParams(config.Default(), state.IPv4, nil, func(b string, _ state.Family) string { return b })), state.RuleSet{})
	if shared := Parse(ours).Shared; len(shared) != 0 {
		t.Errorf("our own rules alone, yet shared chains %v", slices.Collect(maps.Keys(shared)))
	}
}
