package e2e

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// migrationConfig is the one KubeProxyConfiguration file both daemons read
// (the node hands over with kube-proxy's own file). %s: the ipvs block.
const migrationConfig = `hostnameOverride: node-1
clientConnection:
  kubeconfig: ` + guestKubeconfig + `
clusterCIDR: 10.244.0.0/16
conntrack:
  maxPerCore: 0
metricsBindAddress: 127.0.0.1:10249
%s`

// migrationTarget is one Service address of the client loop.
type migrationTarget struct {
	proto framework.Proto
	addr  string
}

// migrationTargets: every kind of Service the scenario programs, by each of
// its addresses (the ETP Local Service without a local endpoint refuses by
// design and is left out, and so is the externalIP on the node's own address,
// which ipvs-proxy refuses by default: see migrationDifferences).
var migrationTargets = []migrationTarget{
	{framework.HTTP, "10.96.0.10:80"},             // ClusterIP
	{framework.HTTP, "10.96.0.12:80"},             // ClusterIP, sessionAffinity ClientIP
	{framework.HTTP, "10.96.0.20:80"},             // NodePort: its ClusterIP
	{framework.HTTP, framework.NodeIP + ":30080"}, // NodePort
	{framework.HTTP, "203.0.113.10:80"},           // externalIP (foreign)
	{framework.HTTP, "198.51.100.10:80"},          // LoadBalancer ingress, source ranges
	{framework.HTTP, framework.NodeIP + ":30082"}, // LoadBalancer's NodePort
	{framework.HTTP, framework.NodeIP + ":30090"}, // NodePort, externalTrafficPolicy Local
	{framework.HTTP, "10.96.0.41:80"},             // internalTrafficPolicy Local
	{framework.UDP, "10.96.0.53:53"},              // UDP
	{framework.HTTP, "10.96.0.53:80"},             // TCP beside UDP on one ClusterIP
}

// TestMigration hands a node from kube-proxy's ipvs mode (the real v1.34
// binary, fed by the real API server) to ipvs-proxy and back, with every kind
// of Service, a client loop through each Service address and long-lived
// connections open:
//  1. kube-proxy (mode ipvs, its own config file) programs everything;
//  2. kube-proxy stops without cleanup (SIGTERM, as a DaemonSet rollout
//     does); ipvs-proxy starts with kube-proxy's file. Its first full sync
//     plans only the operations of migrationExplained, each kind with the
//     documented difference that needs it;
//  3. while ipvs-proxy runs: an endpoint is added, a Service created, another
//     deleted, each applied;
//  4. ipvs-proxy stops (SIGKILL, no cleanup), kube-proxy starts again and
//     adopts.
//
// Throughout: 0 failed requests to every address, every held connection
// answers from its backend, the affinity Service's client stays on one
// backend (its persistence templates survive). Run twice: kube-proxy's
// defaults, and ipvs.scheduler lc with an affinity timeout of 600 s (the
// scheduler and timeout stay as they are: nothing resets).
func TestMigration(t *testing.T) {
	framework.KubeProxyBin(t)
	if _, err := os.Stat(guestKubeconfig); err != nil {
		t.Skipf("no API server on the host (%v): run with scripts/e2e.sh and E2E_APISERVER unset", err)
	}
	t.Run("defaults", func(t *testing.T) { migrate(t, "", "rr", "", 10800) })
	t.Run("lc and affinity 600s", func(t *testing.T) {
		migrate(t, "ipvs:\n  scheduler: lc\n", "lc", "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}\n", 600)
	})
}

func migrate(t *testing.T, ipvsBlock, scheduler, affinityExtra string, persistence int) {
	framework.ResetKernel(t)
	ips := map[string]string{"pod-a": "10.244.1.2", "pod-b": "10.244.2.2", "pod-c": "10.244.3.2"}
	for name, ip := range ips {
		framework.NewBackend(t, name, ip)
	}
	client := framework.Client{NS: framework.NewClientNS(t, "allowed", "10.250.1.2").Name, Timeout: 5 * time.Second}
	rc, err := clientcmd.BuildConfigFromFlags("", guestKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	api := kubernetes.NewForConfigOrDie(rc)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	ensureNode(ctx, t, api, framework.DefaultNodeName, framework.NodeIP)
	applyYAML(ctx, t, api, joinYAML(schedulersWeb(), externalManifests(), trafficPolicyManifests(),
		echoService, echoSlice("10.244.1.2", "10.244.2.2"), affinityService("sticky", "10.96.0.12", affinityExtra),
		migrationService("doomed", "10.96.0.61")))
	cfg := writeConfig(t, t.TempDir(), fmt.Sprintf(migrationConfig, ipvsBlock))

	// 1. kube-proxy programs everything.
	kp := framework.StartKubeProxy(t, cfg)
	waitKubeProxySynced(t, kp)
	waitServing(t, kp, "kube-proxy", append(migrationTargets, migrationTarget{framework.HTTP, "10.96.0.61:80"}))
	expectScheduling(t, "kube-proxy", scheduler, persistence)
	held := openHeld(t, client, 3)
	loads := map[migrationTarget]*framework.Load{}
	for _, tg := range migrationTargets {
		loads[tg] = framework.StartLoadEvery(t, client, tg.proto, tg.addr, 500*time.Millisecond)
	}
	// The control: a backend asked directly, past IPVS. A failure here too
	// means the guest stalled (one emulated CPU; kube-proxy's sync execs a
	// process per ipset member), not that a handover dropped traffic.
	control := framework.StartLoadEvery(t, client, framework.HTTP, "10.244.1.2:8080", 500*time.Millisecond)
	byKubeProxy := kernelSnapshot(t)

	// 2. kube-proxy stops without cleanup; ipvs-proxy adopts.
	t.Logf("%s: kube-proxy stops (SIGTERM), ipvs-proxy starts", clock())
	_ = kp.Stop() // kube-proxy does not handle SIGTERM: it dies of it, leaving everything
	proxy := framework.StartProxy(t, framework.Options{Kubeconfig: guestKubeconfig, ConfigFile: cfg, ExtraArgs: []string{"-v", "4"}})
	first := proxy.WaitFullSyncs(t, 1, 5*time.Minute)[0]
	checkFirstSync(t, first)
	byUs := kernelSnapshot(t)
	t.Logf("kernel state kube-proxy -> ipvs-proxy:\n%s", kernelDiff(byKubeProxy, byUs))
	expectScheduling(t, "ipvs-proxy", scheduler, persistence)
	checkHeld(t, "after ipvs-proxy's first sync", held)

	// 3. Changes while ipvs-proxy runs.
	t.Logf("%s: ipvs-proxy's first sync done; an endpoint added, a Service created, one deleted", clock())
	applyYAML(ctx, t, api, echoSlice("10.244.1.2", "10.244.2.2", "10.244.3.2"))
	applyYAML(ctx, t, api, migrationService("fresh", "10.96.0.60"))
	if err := api.CoreV1().Services("default").Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, time.Minute, func() error {
		vss := framework.IPVSServices(t)
		if vs := framework.FindVirtualServer(vss, "UDP", "10.96.0.53:53"); vs == nil || len(vs.RealServers) != 3 {
			return fmt.Errorf("UDP 10.96.0.53:53 has not got its third endpoint:\n%s", ipvsadmText(t))
		}
		if framework.FindVirtualServer(vss, "TCP", "10.96.0.60:80") == nil {
			return fmt.Errorf("the new Service 10.96.0.60:80 is not programmed yet")
		}
		if framework.FindVirtualServer(vss, "TCP", "10.96.0.61:80") != nil {
			return fmt.Errorf("the deleted Service 10.96.0.61:80 is still programmed")
		}
		return nil
	})
	fresh := migrationTarget{framework.HTTP, "10.96.0.60:80"}
	framework.Eventually(t, 30*time.Second, func() error { _, err := client.Exchange(fresh.proto, fresh.addr); return err })
	loads[fresh] = framework.StartLoadEvery(t, client, fresh.proto, fresh.addr, 500*time.Millisecond)
	checkHeld(t, "after the changes", held)
	beforeRollback := kernelSnapshot(t)

	// 4. Roll back: ipvs-proxy goes (SIGKILL: no cleanup, whatever the
	// signal), kube-proxy starts again and adopts.
	t.Logf("%s: the changes applied by partial syncs: %v; ipvs-proxy stops (SIGKILL), kube-proxy starts", clock(), proxy.Syncs()[1:])
	proxy.Kill()
	kp.Start()
	waitKubeProxySynced(t, kp)
	t.Logf("kernel state ipvs-proxy -> kube-proxy:\n%s", kernelDiff(beforeRollback, kernelSnapshot(t)))
	expectScheduling(t, "kube-proxy again", scheduler, persistence)
	if framework.IPVSService(t, "TCP", "10.96.0.61:80") != nil {
		t.Errorf("kube-proxy brought back the deleted Service 10.96.0.61:80")
	}
	checkHeld(t, "after the rollback", held)
	removeFirewallMarkServers(t)
	time.Sleep(2 * time.Second) // the loop's traffic after the rollback, too
	checkLoads(t, loads)
	c := control.Stop()
	t.Logf("control, 10.244.1.2:8080 directly: %s%s", c, failedAt(c))
}

// migrationService is a ClusterIP Service name at vip on pod-a and pod-b.
func migrationService(name, vip string) string {
	return joinYAML(fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: %s, namespace: default}
spec:
  clusterIP: %s
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
`, name, vip), sliceYAML(name, name+"-1", []string{"http=8080/TCP"}, onNode("node-1", "10.244.1.2", "10.244.2.2")))
}

// dropFirewallMarkServers is the README's rollback step after kube-proxy is
// back: kube-proxy cannot delete ipvs-proxy's firewall-mark virtual servers
// (its log says "Failed to delete service" "0.0.0.0:0/" at every sync), and
// they would keep the endpoints of the moment of the rollback for in-cluster
// traffic to externalTrafficPolicy Local Services. Without them, IPVS looks a
// marked packet up by address, as kube-proxy programmed it.
const dropFirewallMarkServers = `ipvsadm -Sn | awk '$1 == "-A" && $2 == "-f" { system("ipvsadm -D -f " $3 (/ -6( |$)/ ? " -6" : "")) }'`

// removeFirewallMarkServers checks that kube-proxy left ipvs-proxy's
// firewall-mark virtual servers, and runs dropFirewallMarkServers.
func removeFirewallMarkServers(t *testing.T) {
	t.Helper()
	fwm := func() int {
		n := 0
		for _, vs := range framework.IPVSServices(t) {
			if vs.Proto == "FWM" {
				n++
			}
		}
		return n
	}
	before := fwm()
	if before == 0 {
		t.Errorf("kube-proxy removed ipvs-proxy's firewall-mark virtual servers: the README's rollback step is no longer needed")
	}
	// The guest has no awk of its own: busybox's.
	framework.Run(t, "/bin/bash", "-c", `export PATH=/usr/sbin:/usr/bin:/sbin:/bin; command -v awk >/dev/null || awk() { busybox awk "$@"; }; `+dropFirewallMarkServers)
	if n := fwm(); n != 0 {
		t.Errorf("%d firewall-mark virtual servers left after the README's rollback step:\n%s", n, ipvsadmText(t))
	}
	t.Logf("%s: kube-proxy left %d firewall-mark virtual servers of ipvs-proxy's; the README's rollback step removed them", clock(), before)
}

// failedAt renders when the failed exchanges of r started.
func failedAt(r framework.LoadResult) string {
	if len(r.FailedAt) == 0 {
		return ""
	}
	at := make([]string, 0, len(r.FailedAt))
	for _, f := range r.FailedAt {
		at = append(at, f.Format(clockFormat))
	}
	return " (started at " + strings.Join(at, ", ") + ")"
}

// clockFormat and clock time-stamp the scenario's steps in its log, to set
// a failed request against them.
const clockFormat = "15:04:05.000"

func clock() string { return time.Now().Format(clockFormat) }

// waitKubeProxySynced waits for the end of kube-proxy's first sync since its
// start (its IPv4 proxier's): kube-proxy programs IPVS first, the ipsets and
// iptables rules last, so traffic flowing says nothing about the rest.
func waitKubeProxySynced(t *testing.T, kp *framework.Proxy) {
	t.Helper()
	started := time.Now()
	framework.Eventually(t, 10*time.Minute, func() error {
		if !kp.Running() {
			t.Fatalf("kube-proxy exited")
		}
		syncs := framework.KubeProxySyncs()
		if len(syncs) == 0 {
			return fmt.Errorf("kube-proxy does not serve its metrics yet")
		}
		for family, n := range syncs {
			if n < 1 {
				return fmt.Errorf("kube-proxy's %s proxier has not finished a sync", family)
			}
		}
		return nil
	})
	t.Logf("%s: kube-proxy's first sync ended %.1fs after its start (syncs by family: %v)", clock(), time.Since(started).Seconds(), framework.KubeProxySyncs())
}

// waitServing waits until every target answers once, and fails if the daemon
// exited meanwhile.
func waitServing(t *testing.T, p *framework.Proxy, who string, targets []migrationTarget) {
	t.Helper()
	c := framework.Client{NS: "allowed", Timeout: 3 * time.Second}
	framework.Eventually(t, 2*time.Minute, func() error {
		if !p.Running() {
			t.Fatalf("%s exited", who)
		}
		for _, tg := range targets {
			if _, err := c.Exchange(tg.proto, tg.addr); err != nil {
				return fmt.Errorf("%s has not programmed %s %s yet: %w", who, tg.proto, tg.addr, err)
			}
		}
		return nil
	})
}

// expectScheduling checks the scheduler of a plain ClusterIP and the
// persistence of the affinity Service, as set by kube-proxy's config.
func expectScheduling(t *testing.T, when, scheduler string, persistence int) {
	t.Helper()
	if vs := framework.IPVSService(t, "TCP", "10.96.0.10:80"); vs == nil || vs.Scheduler != scheduler {
		t.Errorf("%s: TCP 10.96.0.10:80 is %+v, want scheduler %s", when, vs, scheduler)
	}
	if vs := framework.IPVSService(t, "TCP", "10.96.0.12:80"); vs == nil || vs.Persistent != persistence {
		t.Errorf("%s: TCP 10.96.0.12:80 is %+v, want persistent %d", when, vs, persistence)
	}
}

// heldConn is a long-lived connection and the backend that answers it.
type heldConn struct {
	conn    *framework.LineConn
	backend string
}

func openHeld(t *testing.T, c framework.Client, n int) []heldConn {
	t.Helper()
	var held []heldConn
	for i := 0; i < n; i++ {
		conn, err := c.OpenLine("10.96.0.10:9000")
		if err != nil {
			t.Fatalf("open a long-lived connection: %v", err)
		}
		t.Cleanup(func() { conn.Close() })
		b, err := conn.Ask()
		if err != nil {
			t.Fatalf("long-lived connection: %v", err)
		}
		held = append(held, heldConn{conn, b})
	}
	return held
}

func checkHeld(t *testing.T, when string, held []heldConn) {
	t.Helper()
	for i, h := range held {
		if got, err := h.conn.Ask(); err != nil || got != h.backend {
			t.Errorf("%s: long-lived connection %d answered by %q (%v), want %s", when, i, got, err, h.backend)
		}
	}
	t.Logf("%s: %d long-lived connections alive", when, len(held))
}

// checkLoads stops the loops and wants 0 failures, and the affinity
// Service's client on one backend all along.
func checkLoads(t *testing.T, loads map[migrationTarget]*framework.Load) {
	t.Helper()
	var sent, failed int
	keys := make([]migrationTarget, 0, len(loads))
	for k := range loads {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].addr+string(keys[i].proto) < keys[j].addr+string(keys[j].proto) })
	var report []string
	for _, tg := range keys {
		r := loads[tg].Stop()
		sent += r.Sent
		failed += r.Failed
		report = append(report, fmt.Sprintf("%s %s: %s", tg.proto, tg.addr, r))
		if r.Failed != 0 {
			t.Errorf("%s %s: %d of %d requests failed across the handovers%s", tg.proto, tg.addr, r.Failed, r.Sent, failedAt(r))
		}
		if tg.addr == "10.96.0.12:80" && len(r.Backends) != 1 {
			t.Errorf("%s %s (sessionAffinity ClientIP): one client reached %v, want one backend all along", tg.proto, tg.addr, r.Backends)
		}
	}
	t.Logf("client loop through %d Service addresses: %d requests sent, %d failed\n  %s", len(keys), sent, failed, strings.Join(report, "\n  "))
}
