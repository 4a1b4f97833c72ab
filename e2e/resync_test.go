package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// TestResyncRepairsTampering changes the daemon's kernel state behind its
// back and lets the periodic full sync (--ipvs-sync-period 2s) repair it:
// a real server deleted (ipvsadm -d), another one's weight changed
// (ipvsadm -e), the virtual server's scheduler changed (ipvsadm -E), a
// second Service's whole virtual server deleted (ipvsadm -D), a
// KUBE-CLUSTER-IP member deleted (ipset del; nft delete element with the
// nftables backend), the VIP removed from kube-ipvs0, the KUBE-POSTROUTING
// chain flushed (postrouting), the nat OUTPUT jump to KUBE-SERVICES deleted
// (the nat-output chain flushed) and net.ipv4.vs.conntrack turned off. Everything is
// back within a few sync periods, through exactly the repairing operations,
// and traffic reaches both backends of both Services again.
func TestResyncRepairsTampering(t *testing.T) { framework.EachRulesBackend(t, resyncRepairsTampering) }

// resyncRepairsTampering is TestResyncRepairsTampering with one rules backend (framework.CurrentRulesBackend).
func resyncRepairsTampering(t *testing.T) {
	framework.ResetKernel(t)
	framework.NewBackend(t, "pod-a", "10.244.1.2")
	framework.NewBackend(t, "pod-b", "10.244.2.2")
	client := framework.NewClientNS(t, "client", "10.250.0.2").Client()
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "web.yaml", joinYAML(webService("10.96.0.10", ""), webSlice("web-1", "10.244.1.2", "10.244.2.2")))
	framework.WriteManifest(t, dir, "api.yaml", joinYAML(`apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec:
  clusterIP: 10.96.0.11
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
`, sliceYAML("api", "api-1", []string{"http=8080/TCP"}, onNode("node-1", "10.244.1.2", "10.244.2.2"))))
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir, ExtraArgs: []string{"--ipvs-sync-period", "2s"}})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)
	const vip, api = "10.96.0.10:80", "10.96.0.11:80"
	rules := rulesTamperingFor(t)
	t.Logf("before: %s", requests(t, client, framework.HTTP, vip, 4))

	syncs := len(proxy.Syncs())
	tampered := time.Now()
	framework.IPVSADM(t, "-d", "-t", vip, "-r", "10.244.1.2:8080")
	framework.IPVSADM(t, "-e", "-t", vip, "-r", "10.244.2.2:8080", "-m", "-w", "5")
	framework.IPVSADM(t, "-E", "-t", vip, "-s", "wlc")
	framework.IPVSADM(t, "-D", "-t", api)
	framework.Run(t, framework.IPBin, "addr", "del", "10.96.0.10/32", "dev", "kube-ipvs0")
	rules.tamper(t)
	framework.Sysctl(t, "net.ipv4.vs.conntrack", "0")

	framework.Eventually(t, 20*time.Second, func() error {
		var missing []string
		vss := framework.IPVSServices(t)
		for _, addr := range []string{vip, api} {
			vs := framework.FindVirtualServer(vss, "TCP", addr)
			if vs == nil {
				missing = append(missing, "virtual server "+addr)
				continue
			}
			if vs.Scheduler != "rr" {
				missing = append(missing, addr+" scheduler rr")
			}
			for _, rs := range []string{"10.244.1.2:8080", "10.244.2.2:8080"} {
				if r := vs.RealServer(rs); r == nil || r.Weight != 1 {
					missing = append(missing, addr+" real server "+rs+" weight 1")
				}
			}
		}
		if !slices.Contains(framework.IPSetMembers(t, "KUBE-CLUSTER-IP"), "10.96.0.10,tcp:80") {
			missing = append(missing, "KUBE-CLUSTER-IP member")
		}
		if !slices.Contains(framework.Addrs(t, "kube-ipvs0"), "10.96.0.10/32") {
			missing = append(missing, "kube-ipvs0 address")
		}
		missing = append(missing, rules.missing(t)...)
		if framework.ReadSysctl(t, "net.ipv4.vs.conntrack") != "1" {
			missing = append(missing, "net.ipv4.vs.conntrack=1")
		}
		if len(missing) > 0 {
			return fmt.Errorf("not repaired yet: %s", strings.Join(missing, ", "))
		}
		return nil
	})
	repaired := time.Since(tampered)

	var ops []string
	for _, s := range proxy.Syncs()[syncs:] {
		ops = append(ops, s.Planned...)
	}
	// A sync may come between two of the tampering commands: then the
	// rules (one operation for every chain) are restored twice.
	slices.Sort(ops)
	ops = slices.Compact(ops)
	want := append([]string{
		"add-address 10.96.0.10/32",
		"add-rs -a -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1",
		"add-rs -a -t 10.96.0.11:80 -r 10.244.1.2:8080 -m -w 1",
		"add-rs -a -t 10.96.0.11:80 -r 10.244.2.2:8080 -m -w 1",
		"add-vs -A -t 10.96.0.11:80 -s rr",
		"edit-rs -e -t 10.96.0.10:80 -r 10.244.2.2:8080 -m -w 1",
		"edit-vs -E -t 10.96.0.10:80 -s rr",
		"sysctl net/ipv4/vs/conntrack=1",
	}, rules.ops...)
	slices.Sort(want)
	if !slices.Equal(ops, want) {
		t.Errorf("repairing operations:\n  %s\nwant:\n  %s", strings.Join(ops, "\n  "), strings.Join(want, "\n  "))
	}
	t.Logf("repaired %.1fs after the tampering (sync period 2s) through %d operations", repaired.Seconds(), len(ops))
	for _, addr := range []string{vip, api} {
		spread := requests(t, client, framework.HTTP, addr, 6)
		t.Logf("after: %s %s", addr, spread)
		if len(spread) != 2 {
			t.Errorf("after the repair: %s %s, want both backends", addr, spread)
		}
	}
}

// rulesTampering is what the scenario does to the rules backend's objects:
// a KUBE-CLUSTER-IP member deleted, the postrouting chain flushed, the jump
// from nat OUTPUT to the services chain deleted; how to tell they are back,
// and the operations that repair them.
type rulesTampering struct {
	tamper  func(t testing.TB)
	missing func(t testing.TB) []string
	ops     []string
}

// rulesTamperingFor returns the tampering for the scenario's rules backend.
func rulesTamperingFor(t testing.TB) rulesTampering {
	t.Helper()
	if framework.CurrentRulesBackend() == framework.NFTables {
		postrouting, output := nftRuleCount(t, "postrouting"), nftRuleCount(t, "nat-output")
		return rulesTampering{
			tamper: func(t testing.TB) {
				framework.Run(t, framework.NFTBin, "delete", "element", "ip", "ipvs-proxy", "cluster-ip", "{ 10.96.0.10 . tcp . 80 }")
				framework.Run(t, framework.NFTBin, "flush", "chain", "ip", "ipvs-proxy", "postrouting")
				framework.Run(t, framework.NFTBin, "flush", "chain", "ip", "ipvs-proxy", "nat-output")
			},
			missing: func(t testing.TB) []string {
				var m []string
				if nftRuleCount(t, "postrouting") != postrouting {
					m = append(m, "postrouting rules")
				}
				if nftRuleCount(t, "nat-output") != output {
					m = append(m, "nat-output jump to services")
				}
				return m
			},
			ops: []string{"nft-add-element ip KUBE-CLUSTER-IP 10.96.0.10,tcp:80", "nft-sync-chain ip nat-output", "nft-sync-chain ip postrouting"},
		}
	}
	postrouting := ruleCount(t, "KUBE-POSTROUTING")
	jump := servicesJump(t)
	if jump == "" {
		t.Fatalf("nat OUTPUT has no jump to KUBE-SERVICES:\n%s", framework.Run(t, framework.IPTablesBin, "-t", "nat", "-S", "OUTPUT"))
	}
	return rulesTampering{
		tamper: func(t testing.TB) {
			framework.Run(t, framework.IPSetBin, "del", "KUBE-CLUSTER-IP", "10.96.0.10,tcp:80")
			framework.Run(t, framework.IPTablesBin, "-t", "nat", "-F", "KUBE-POSTROUTING")
			// the rule's comment is quoted: let the shell split it
			framework.Run(t, "/usr/bin/sh", "-c", framework.IPTablesBin+" -t nat -D"+strings.TrimPrefix(jump, "-A"))
		},
		missing: func(t testing.TB) []string {
			var m []string
			if ruleCount(t, "KUBE-POSTROUTING") != postrouting {
				m = append(m, "KUBE-POSTROUTING rules")
			}
			if servicesJump(t) != jump {
				m = append(m, "nat OUTPUT jump to KUBE-SERVICES")
			}
			return m
		},
		ops: []string{"add-entry KUBE-CLUSTER-IP 10.96.0.10,tcp:80", "sync-rules ipv4"},
	}
}

// nftRuleCount returns the number of rules in a chain of table ip ipvs-proxy
// (each of them has a comment).
func nftRuleCount(t testing.TB, chain string) int {
	t.Helper()
	return strings.Count(framework.Run(t, framework.NFTBin, "list", "chain", "ip", "ipvs-proxy", chain), "comment \"")
}

// servicesJump returns the nat OUTPUT rule that jumps to KUBE-SERVICES, as
// iptables -S prints it, or "".
func servicesJump(t testing.TB) string {
	t.Helper()
	for _, line := range strings.Split(framework.Run(t, framework.IPTablesBin, "-t", "nat", "-S", "OUTPUT"), "\n") {
		if strings.HasPrefix(line, "-A OUTPUT ") && strings.HasSuffix(line, "-j KUBE-SERVICES") {
			return line
		}
	}
	return ""
}

// ruleCount returns the number of rules in nat chain chain.
func ruleCount(t testing.TB, chain string) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(framework.Run(t, framework.IPTablesBin, "-t", "nat", "-S", chain), "\n") {
		if strings.HasPrefix(line, "-A ") {
			n++
		}
	}
	return n
}
