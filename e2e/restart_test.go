package e2e

import (
	"fmt"
	"regexp"
	"slices"
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

// TestRestartAdoptsKernelState restarts the daemon twice, by SIGTERM and by
// SIGKILL (a crash), while a client loop runs (HTTP) and two TCP connections
// are open, with every kind of Service programmed (ClusterIP, NodePort,
// externalIPs, LoadBalancer with source ranges, traffic policies Local,
// affinity, UDP) and a config that sets timeouts, sysctls and a cluster CIDR.
// Before the restarts, the endpoint holding one of the connections is
// removed, so its real server drains at weight 0 (kube-proxy #92019 and
// #108319 reset such weights on restart). After each restart:
//   - the daemon exited cleanly on SIGTERM;
//   - its first full sync plans 0 operations (the kernel's state is adopted
//     as it is, not flushed and re-created); otherwise every planned
//     operation is reported;
//   - ipvsadm -Sn, ipset save and the iptables rules are the same as before
//     the first stop: the draining real server is still at weight 0, the
//     ready ones at 1;
//   - both open connections still answer from their backends, the drained
//     one included, and no request of the loop failed; the UDP Service
//     answers after the restarts.
func TestRestartAdoptsKernelState(t *testing.T) {
	framework.EachRulesBackend(t, restartAdoptsKernelState)
}

// restartAdoptsKernelState is TestRestartAdoptsKernelState with one rules backend (framework.CurrentRulesBackend).
func restartAdoptsKernelState(t *testing.T) {
	framework.ResetKernel(t)
	ips := map[string]string{"pod-a": "10.244.1.2", "pod-b": "10.244.2.2", "pod-c": "10.244.3.2"}
	for name, ip := range ips {
		framework.NewBackend(t, name, ip)
	}
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
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir, ConfigFile: cfg,
		ExtraArgs: []string{"--drain-check-period", "1s"}})
	initial := proxy.WaitFullSyncs(t, 1, 30*time.Second)[0]
	if initial.Failed != 0 || initial.Incomplete() {
		t.Fatalf("first run's full sync: %s", initial)
	}
	t.Logf("first run: %s", initial)
	const http, line = "10.96.0.10:80", "10.96.0.10:9000"

	// The drained connection: its endpoint is removed while it is open. No
	// request has gone to http yet, so the endpoint's real server there has
	// no connection and is deleted at once; on line it stays at weight 0.
	drainedConn, err := client.OpenLine(line)
	if err != nil {
		t.Fatalf("open a long-lived connection: %v", err)
	}
	defer drainedConn.Close()
	drained, err := drainedConn.Ask()
	if err != nil {
		t.Fatalf("long-lived connection: %v", err)
	}
	var keep []string
	for name, ip := range ips {
		if name != drained {
			keep = append(keep, ip)
		}
	}
	slices.Sort(keep)
	framework.WriteManifest(t, dir, "web.yaml", joinYAML(webLineService, webLineSlice(keep...)))
	drainedRS := ips[drained] + ":9000"
	framework.Eventually(t, 15*time.Second, func() error {
		vss := framework.IPVSServices(t)
		if rs := framework.FindVirtualServer(vss, "TCP", line).RealServer(drainedRS); rs == nil || rs.Weight != 0 || rs.ActiveConn != 1 {
			return fmt.Errorf("TCP %s: want %s at weight 0 with ActiveConn 1:\n%s", line, drainedRS, ipvsadmText(t))
		}
		if rs := framework.FindVirtualServer(vss, "TCP", http).RealServer(ips[drained] + ":8080"); rs != nil {
			return fmt.Errorf("TCP %s: %s (no connection) not deleted yet", http, rs.Addr)
		}
		return nil
	})
	readyConn, err := client.OpenLine(line)
	if err != nil {
		t.Fatalf("open a second long-lived connection: %v", err)
	}
	defer readyConn.Close()
	ready, err := readyConn.Ask()
	if err != nil || ready == drained {
		t.Fatalf("second long-lived connection answered by %q (%v), want a ready backend", ready, err)
	}
	t.Logf("long-lived connections to %s: one to %s, whose endpoint was removed (drains at weight 0), one to %s (ready)", line, drained, ready)

	// One loop, one request every 50 ms: each exchange costs the guest's one
	// emulated CPU several milliseconds, and a tight loop slows the restart
	// itself several times over.
	load := framework.StartLoadEvery(t, client, framework.HTTP, http, 50*time.Millisecond)
	framework.Eventually(t, 10*time.Second, func() error {
		if n := load.Snapshot().Sent; n < 20 {
			return fmt.Errorf("the load has sent %d requests", n)
		}
		return nil
	})
	before := kernelSnapshot(t)
	t.Logf("before the restarts:\n%s", ipvsadmText(t))

	adopted := func(t *testing.T, how string, stopped time.Time) {
		first := proxy.WaitFullSyncs(t, 1, 30*time.Second)[0]
		t.Logf("first full sync %.1fs after the %s: %s", time.Since(stopped).Seconds(), how, first)
		if first.Ops != 0 || first.Failed != 0 || first.Incomplete() {
			t.Errorf("the first full sync after the %s planned %d operations (%d failed), want 0: the kernel state must be adopted as it is. Planned:\n  %s",
				how, first.Ops, first.Failed, strings.Join(first.Planned, "\n  "))
		}
		after := kernelSnapshot(t)
		for _, what := range []string{"ipvsadm -Sn", "ipset save", "iptables-save", "nft list table ip ipvs-proxy"} {
			if before[what] != after[what] {
				t.Errorf("%s changed across the %s:\nbefore:\n%s\nafter:\n%s", what, how, before[what], after[what])
			}
		}
		for _, rs := range framework.IPVSService(t, "TCP", line).RealServers {
			want := 1
			if rs.Addr == drainedRS {
				want = 0
			}
			if rs.Weight != want {
				t.Errorf("after the %s, TCP %s real server %s has weight %d, want %d", how, line, rs.Addr, rs.Weight, want)
			}
		}
		for conn, backend := range map[*framework.LineConn]string{drainedConn: drained, readyConn: ready} {
			if got, err := conn.Ask(); err != nil || got != backend {
				t.Errorf("long-lived connection after the %s: answered by %q, %v; want %s", how, got, err, backend)
			}
		}
	}

	stopped := time.Now()
	if err := proxy.Restart(); err != nil {
		t.Errorf("ipvs-proxy did not exit cleanly on SIGTERM: %v", err)
	}
	adopted(t, "SIGTERM restart", stopped)

	stopped = time.Now()
	proxy.Kill()
	proxy.Start()
	adopted(t, "SIGKILL restart", stopped)

	udp := requests(t, client, framework.UDP, "10.96.0.53:53", 4)
	time.Sleep(time.Second) // the loop's traffic after the restarts, too
	res := load.Stop()
	t.Logf("HTTP %s in a loop through both restarts: %s; UDP 10.96.0.53:53 after them: %s", http, res, udp)
	if res.Failed != 0 {
		t.Errorf("HTTP %s: %d of %d requests failed across the restarts, want 0", http, res.Failed, res.Sent)
	}
	if n := res.Backends[drained]; n != 0 {
		t.Errorf("HTTP %s: the removed endpoint %s answered %d requests", http, drained, n)
	}
}

// kernelSnapshot returns what a restart must leave alone, in comparable form:
// ipvsadm -Sn, ipset save, and iptables-save without counters and comments.
func kernelSnapshot(t testing.TB) map[string]string {
	t.Helper()
	return map[string]string{
		"ipvsadm -Sn":                  stdout(t, framework.IPVSAdmBin, "-Sn"),
		"ipset save":                   stdout(t, framework.IPSetBin, "save"),
		"iptables-save":                saveVolatile.ReplaceAllString(iptablesSave(t), ""),
		"nft list table ip ipvs-proxy": framework.NFTList(t, "ip"),
	}
}

// saveVolatile matches what changes in iptables-save output without a rule
// changing: the "# Generated/Completed on <date>" lines and chain counters.
var saveVolatile = regexp.MustCompile(`(?m)^#.*\n|\[\d+:\d+\]`)
