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
// (ipvsadm -e), a KUBE-CLUSTER-IP member deleted (ipset del), the VIP removed
// from kube-ipvs0, the KUBE-POSTROUTING chain flushed and
// net.ipv4.vs.conntrack turned off. Everything is back within a few sync
// periods, through exactly the repairing operations, and traffic reaches
// both backends again.
func TestResyncRepairsTampering(t *testing.T) {
	framework.ResetKernel(t)
	framework.NewBackend(t, "pod-a", "10.244.1.2")
	framework.NewBackend(t, "pod-b", "10.244.2.2")
	client := framework.NewClientNS(t, "client", "10.250.0.2").Client()
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "web.yaml", joinYAML(webService("10.96.0.10", ""), webSlice("web-1", "10.244.1.2", "10.244.2.2")))
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir, ExtraArgs: []string{"-v", "4", "--ipvs-sync-period", "2s"}})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)
	const vip = "10.96.0.10:80"
	postrouting := ruleCount(t, "KUBE-POSTROUTING")
	t.Logf("before: %s", requests(t, client, framework.HTTP, vip, 4))

	syncs := len(proxy.Syncs())
	tampered := time.Now()
	framework.IPVSADM(t, "-d", "-t", vip, "-r", "10.244.1.2:8080")
	framework.IPVSADM(t, "-e", "-t", vip, "-r", "10.244.2.2:8080", "-m", "-w", "5")
	framework.Run(t, framework.IPSetBin, "del", "KUBE-CLUSTER-IP", "10.96.0.10,tcp:80")
	framework.Run(t, framework.IPBin, "addr", "del", "10.96.0.10/32", "dev", "kube-ipvs0")
	framework.Run(t, framework.IPTablesBin, "-t", "nat", "-F", "KUBE-POSTROUTING")
	framework.Sysctl(t, "net.ipv4.vs.conntrack", "0")

	framework.Eventually(t, 20*time.Second, func() error {
		var missing []string
		vs := framework.IPVSService(t, "TCP", vip)
		for _, rs := range []string{"10.244.1.2:8080", "10.244.2.2:8080"} {
			if r := vs.RealServer(rs); r == nil || r.Weight != 1 {
				missing = append(missing, "real server "+rs+" weight 1")
			}
		}
		if !slices.Contains(framework.IPSetMembers(t, "KUBE-CLUSTER-IP"), "10.96.0.10,tcp:80") {
			missing = append(missing, "KUBE-CLUSTER-IP member")
		}
		if !slices.Contains(framework.Addrs(t, "kube-ipvs0"), "10.96.0.10/32") {
			missing = append(missing, "kube-ipvs0 address")
		}
		if ruleCount(t, "KUBE-POSTROUTING") != postrouting {
			missing = append(missing, "KUBE-POSTROUTING rules")
		}
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
		ops = append(ops, s.PlannedOps...)
	}
	slices.Sort(ops)
	want := []string{
		"add-address 10.96.0.10/32",
		"add-entry KUBE-CLUSTER-IP 10.96.0.10,tcp:80",
		"add-rs -a -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1",
		"edit-rs -e -t 10.96.0.10:80 -r 10.244.2.2:8080 -m -w 1",
		"sync-rules ipv4",
		"sysctl net/ipv4/vs/conntrack=1",
	}
	if !slices.Equal(ops, want) {
		t.Errorf("repairing operations:\n  %s\nwant:\n  %s", strings.Join(ops, "\n  "), strings.Join(want, "\n  "))
	}
	t.Logf("repaired %.1fs after the tampering (sync period 2s) through %d operations", repaired.Seconds(), len(ops))
	spread := requests(t, client, framework.HTTP, vip, 6)
	t.Logf("after: %s", spread)
	if len(spread) != 2 {
		t.Errorf("after the repair: %s, want both backends", spread)
	}
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
