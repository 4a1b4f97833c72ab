package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// restartConfig sets what adds kernel state beyond the defaults: IPVS
// timeouts, strict ARP sysctls, and a cluster CIDR (another form of the
// masquerade rule).
const restartConfig = `clusterCIDR: 10.244.0.0/16
ipvs:
  strictARP: true
  tcpTimeout: 1h
  tcpFinTimeout: 60s
  udpTimeout: 120s
`

// TestRestartAdoptsKernelState stops the daemon (SIGTERM) and starts it
// again while a client loop runs (HTTP) and a TCP connection is open,
// with every kind of Service programmed (ClusterIP, NodePort, externalIPs,
// LoadBalancer with source ranges, traffic policies Local, affinity, UDP) and
// a config that sets timeouts, sysctls and a cluster CIDR:
//   - the daemon exits cleanly on SIGTERM;
//   - the restarted daemon's first full sync plans 0 operations (the kernel's
//     state is adopted as it is, not flushed and re-created); otherwise every
//     planned operation is reported;
//   - ipvsadm -Sn, ipset save and the iptables rules are the same before the
//     stop and after the restart;
//   - the open connection still answers from its backend, no request of the
//     loop failed, and the UDP Service answers after the restart.
func TestRestartAdoptsKernelState(t *testing.T) {
	framework.ResetKernel(t)
	framework.NewBackend(t, "pod-a", "10.244.1.2")
	framework.NewBackend(t, "pod-b", "10.244.2.2")
	framework.NewBackend(t, "pod-c", "10.244.3.2")
	// Generous timeouts: a busy emulated CPU may take seconds to answer, and
	// a dropped connection is refused or reset, not slow.
	client := framework.Client{NS: framework.NewClientNS(t, "allowed", "10.250.1.2").Name, Timeout: 5 * time.Second}
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "web.yaml", schedulersWeb())
	framework.WriteManifest(t, dir, "external.yaml", externalManifests())
	framework.WriteManifest(t, dir, "policies.yaml", trafficPolicyManifests())
	framework.WriteManifest(t, dir, "echo.yaml", joinYAML(echoService, echoSlice("10.244.1.2", "10.244.2.2")))
	framework.WriteManifest(t, dir, "sticky.yaml", affinityService("sticky", "10.96.0.12", ""))
	cfg := writeConfig(t, t.TempDir(), restartConfig)
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir, ConfigFile: cfg, ExtraArgs: []string{"-v", "4"}})
	initial := proxy.WaitFullSyncs(t, 1, 30*time.Second)[0]
	if initial.Failed != 0 || initial.Incomplete {
		t.Fatalf("first run's full sync: %s", initial)
	}
	t.Logf("first run: %s", initial)

	// One loop, one request every 50 ms: each exchange costs the guest's one
	// emulated CPU several milliseconds, and a tight loop slows the restart
	// itself several times over.
	load := framework.StartLoadEvery(t, client, framework.HTTP, "10.96.0.10:80", 50*time.Millisecond)
	conn, err := client.OpenLine("10.96.0.10:9000")
	if err != nil {
		t.Fatalf("open a long-lived connection: %v", err)
	}
	defer conn.Close()
	holder, err := conn.Ask()
	if err != nil {
		t.Fatalf("long-lived connection: %v", err)
	}
	framework.Eventually(t, 10*time.Second, func() error {
		if n := load.Snapshot().Sent; n < 20 {
			return fmt.Errorf("the load has sent %d requests", n)
		}
		return nil
	})
	before := kernelSnapshot(t)

	stopped := time.Now()
	if err := proxy.Restart(); err != nil {
		t.Errorf("ipvs-proxy did not exit cleanly on SIGTERM: %v", err)
	}
	first := proxy.WaitFullSyncs(t, 1, 30*time.Second)[0]
	t.Logf("restarted daemon's first full sync %.1fs after the stop: %s", time.Since(stopped).Seconds(), first)
	if first.Ops != 0 || first.Failed != 0 || first.Incomplete {
		t.Errorf("the restarted daemon's first full sync planned %d operations (%d failed), want 0: the kernel state must be adopted as it is. Planned:\n  %s",
			first.Ops, first.Failed, strings.Join(first.PlannedOps, "\n  "))
	}
	after := kernelSnapshot(t)
	for _, what := range []string{"ipvsadm -Sn", "ipset save", "iptables-save"} {
		if before[what] != after[what] {
			t.Errorf("%s changed across the restart:\nbefore:\n%s\nafter:\n%s", what, before[what], after[what])
		}
	}

	if got, err := conn.Ask(); err != nil || got != holder {
		t.Errorf("long-lived connection after the restart: answered by %q, %v; want %s", got, err, holder)
	}
	udp := requests(t, client, framework.UDP, "10.96.0.53:53", 4)
	time.Sleep(time.Second) // the loop's traffic after the restart, too
	res := load.Stop()
	t.Logf("HTTP 10.96.0.10:80 in a loop through the restart: %s; UDP 10.96.0.53:53 after it: %s", res, udp)
	if res.Failed != 0 {
		t.Errorf("HTTP 10.96.0.10:80: %d of %d requests failed across the restart, want 0", res.Failed, res.Sent)
	}
}

// kernelSnapshot returns what a restart must leave alone, in comparable form:
// ipvsadm -Sn, ipset save, and iptables-save without counters and comments.
func kernelSnapshot(t testing.TB) map[string]string {
	t.Helper()
	return map[string]string{
		"ipvsadm -Sn":   stdout(t, framework.IPVSAdmBin, "-Sn"),
		"ipset save":    stdout(t, framework.IPSetBin, "save"),
		"iptables-save": saveVolatile.ReplaceAllString(iptablesSave(t), ""),
	}
}

// saveVolatile matches what changes in iptables-save output without a rule
// changing: the "# Generated/Completed on <date>" lines and chain counters.
var saveVolatile = regexp.MustCompile(`(?m)^#.*\n|\[\d+:\d+\]`)
