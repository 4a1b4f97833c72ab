package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// TestSwitchRulesBackend starts the daemon with --rules-backend auto on a
// fresh node (it must choose nftables: the guest kernel accepts the whole
// table, and say so in its log), then moves the running node to iptables
// and back to nftables, as docs/rules-backends.md tells an operator to:
// stop the daemon (the kernel state stays and keeps serving), start it with
// the other --rules-backend. Its first full sync writes the new
// backend's objects, then removes the old backend's (the nftables table in
// one transaction before the iptables rules and the ipsets; the iptables
// rules and ipsets before the nftables table), so some rule is in place at
// every moment. Two client loops run throughout and lose no request:
//   - a client namespace to the NodePort on the node address (masqueraded);
//   - pod-a to its own Service's ClusterIP: half of these come back to
//     pod-a itself (hairpin), which only works while the loop-back
//     masquerade rule is in place.
func TestSwitchRulesBackend(t *testing.T) {
	framework.ResetKernel(t)
	a := framework.NewBackend(t, "pod-a", "10.244.1.2")
	framework.NewBackend(t, "pod-b", "10.244.2.2")
	// a few seconds, as for every client loop: the emulated CPU is slow and shared
	client := framework.Client{NS: framework.NewClientNS(t, "client", "10.250.0.2").Name, Timeout: 5 * time.Second}
	hairpinClient := a.Client()
	hairpinClient.Timeout = 5 * time.Second
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "np.yaml", joinYAML(nodePortService,
		sliceYAML("np", "np-1", []string{"http=8080/TCP"}, onNode("node-1", "10.244.1.2", "10.244.2.2"))))
	const clusterIP, nodePort = "10.96.0.20:80", framework.NodeIP + ":30080"

	run := func(backend string) *framework.Proxy {
		p := framework.StartProxy(t, framework.Options{ManifestDir: dir, ExtraArgs: []string{"-v", "4", "--rules-backend", backend}})
		// a bound, not a wait: the first full sync after a switch reads both
		// backends, writes one and removes the other; with the host's load
		// average at 22 (2 cores) the daemon took 61 s from exec to it
		p.WaitFullSyncs(t, 1, 150*time.Second)
		return p
	}
	proxy := run("auto")
	expectOnly(t, "nftables")
	chosen := framework.Messages(framework.ParseLog(proxy.Logs()), "rules backend chosen")
	if len(chosen) != 1 || chosen[0].Field("backend") != "nftables" || !strings.Contains(chosen[0].Field("why"), "accepts the nftables table") {
		t.Fatalf("auto on a fresh node logged %+v; want one \"rules backend chosen\" naming nftables and why", chosen)
	}
	t.Logf("auto: %s, because %s", chosen[0].Field("backend"), chosen[0].Field("why"))
	hairpin := requests(t, a.Client(), framework.HTTP, clusterIP, 10)
	if hairpin["pod-a"] == 0 {
		t.Fatalf("HTTP %s from pod-a: %s; want some answered by pod-a itself (hairpin)", clusterIP, hairpin)
	}

	loads := map[string]*framework.Load{
		"NodePort from a client namespace": framework.StartLoadEvery(t, client, framework.HTTP, nodePort, 50*time.Millisecond),
		"ClusterIP from pod-a (hairpin)":   framework.StartLoadEvery(t, hairpinClient, framework.HTTP, clusterIP, 50*time.Millisecond),
	}
	settle := func() {
		for _, l := range loads {
			n := l.Snapshot().Sent
			framework.Eventually(t, 20*time.Second, func() error {
				if l.Snapshot().Sent < n+20 {
					return fmt.Errorf("the loop has sent %d requests since", l.Snapshot().Sent-n)
				}
				return nil
			})
		}
	}
	settle()
	for _, to := range []string{"iptables", "nftables"} {
		if err := proxy.Stop(); err != nil {
			t.Fatalf("stop ipvs-proxy: %v", err)
		}
		switched := time.Now()
		proxy = run(to)
		first := proxy.FullSyncs()[0]
		t.Logf("switched to %s in %.1fs; first full sync: %s; applied by kind: %v", to, time.Since(switched).Seconds(), first, first.Applied)
		if first.Failed != 0 {
			t.Errorf("the switch to %s: %d operations failed", to, first.Failed)
		}
		expectOnly(t, to)
		settle()
	}
	for what, l := range loads {
		res := l.Stop()
		t.Logf("%s through both switches: %s", what, res)
		if res.Failed != 0 {
			t.Errorf("%s: %d of %d requests failed across the switches, want 0", what, res.Failed, res.Sent)
		}
		if len(res.Backends) != 2 {
			t.Errorf("%s: answered by %v, want both backends", what, res.Backends)
		}
	}
}

// expectOnly checks that the sets and rules are those of one backend.
func expectOnly(t *testing.T, backend string) {
	t.Helper()
	table := framework.NFTList(t, "ip")
	ipsets := framework.Run(t, framework.IPSetBin, "list", "-n")
	rules := iptablesSave(t)
	ipt := strings.Contains(rules, "KUBE-") || strings.Contains(ipsets, "KUBE-")
	nft := table != ""
	if want := backend == "iptables"; ipt != want || nft == want {
		t.Errorf("with the %s backend: iptables chains or ipsets of ours %v, nftables table %v:\n%s\n%s\n%s", backend, ipt, nft, ipsets, rules, table)
	}
}
