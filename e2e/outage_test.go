package e2e

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// outageLength is how long each scenario keeps the daemon's source away.
const outageLength = 30 * time.Second

// TestManifestDirectoryOutage takes the manifest directory of a daemon in
// standalone mode away (renamed: the scenarios run as root, for whom a
// chmod 000 directory stays readable) for 30 s while a client loop runs,
// and edits a manifest in the meantime (an unknown scheduler annotation
// fixed). The Services are those of features_test.go, and what does not
// depend on the source is checked during the outage: per-Service
// schedulers, `ipvs-proxy status` with a draining real server, and traffic
// metrics (checkAnnotations, checkStatus, checkMetrics).
//   - /healthz shows sourceStaleSince within a few seconds and stays 200
//     throughout (what is programmed keeps serving);
//   - ipvsadm -Sn, ipset save and iptables-save are unchanged during the
//     outage, the periodic full syncs (every 5 s) go on and plan nothing,
//     and the edit is not applied;
//   - once the directory is back, the edit is applied by exactly its own
//     operation (edit-vs: nothing is flushed or re-created), its problem
//     leaves `ipvs-proxy status`, sourceStaleSince goes away;
//   - the daemon logged the directory unreadable once, and back once;
//   - the loop saw 0 failed requests.
func TestManifestDirectoryOutage(t *testing.T) {
	framework.ResetKernel(t)
	n := &featureNode{ips: map[string]string{"pod-a": "10.244.1.2", "pod-b": "10.244.2.2", "pod-c": "10.244.3.2"}}
	for name, ip := range n.ips {
		framework.NewBackend(t, name, ip)
	}
	n.client1 = framework.NewClientNS(t, "client1", "10.250.0.2").Client()
	n.client2 = framework.NewClientNS(t, "client2", "10.250.0.3").Client()
	dir := filepath.Join(t.TempDir(), "manifests")
	away := dir + ".away"
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFeatureManifests(t, dir, n.ips)
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir, ExtraArgs: []string{
		"--ipvs-sync-period", "5s", "--traffic-metrics-period", "1s", "--drain-check-period", "1s"}})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)
	drainOne(t, dir, n)
	const web, typo = "10.96.0.10:80", "10.96.0.13:80"

	// One request every 100 ms: the checks during the outage share the
	// emulated CPU with the loop.
	load := framework.StartLoadEvery(t, framework.Client{NS: n.client1.NS, Timeout: 5 * time.Second}, framework.HTTP, web, 100*time.Millisecond)
	health := framework.WatchHealthz(t, framework.HealthzAddr, 500*time.Millisecond)
	waitSent(t, load, 10)
	before := kernelSnapshot(t)
	syncs, fullSyncs := len(proxy.Syncs()), len(proxy.FullSyncs())

	if err := os.Rename(dir, away); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	t.Cleanup(func() { _ = os.Rename(away, dir) }) // if the test stops half-way
	// The edit made while the directory is away.
	framework.WriteManifest(t, away, "typo.yaml", annotatedService("typo", "10.96.0.13", "ipvs-proxy.io/scheduler: lc"))
	waitStale(t, down)
	t.Run("annotations", func(t *testing.T) { checkAnnotations(t, n) })
	t.Run("status", func(t *testing.T) { checkStatus(t, n) })
	t.Run("metrics", func(t *testing.T) { checkMetrics(t, n) })
	// The outage lasts 30 s, or as long as the checks if they take longer.
	t.Logf("checks during the outage done %.1fs after it began", time.Since(down).Seconds())
	time.Sleep(time.Until(down.Add(outageLength)))

	expectUnchanged(t, before, "while the manifest directory was away")
	if vs := framework.IPVSService(t, "TCP", typo); vs.Scheduler != "rr" {
		t.Errorf("the edit made while the directory was away was applied:\n%s", ipvsadmText(t))
	}
	expectIdleFullSyncs(t, proxy.FullSyncs()[fullSyncs:], "while the manifest directory was away")

	if err := os.Rename(away, dir); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	framework.Eventually(t, 20*time.Second, func() error {
		if vs := framework.IPVSService(t, "TCP", typo); vs.Scheduler != "lc" {
			return fmt.Errorf("TCP %s is still %s", typo, vs.Scheduler)
		}
		return nil
	})
	t.Logf("the edit made during the outage was applied %.1fs after the directory came back", time.Since(up).Seconds())
	waitNotStale(t, 15*time.Second)
	expectOnlyOps(t, proxy, syncs, "edit-vs -E -t 10.96.0.13:80 -s lc")
	if out := framework.Run(t, os.Getenv(framework.EnvProxyBin), "status"); strings.Contains(out, `unknown scheduler "lcx"`) {
		t.Errorf("ipvs-proxy status still shows the fixed annotation as a problem:\n%s", out)
	}
	expectHealthThroughOutage(t, health.Stop(), down, up)
	// what the operator reads: the outage told once each way, not at every poll
	log := framework.ParseLog(proxy.Logs())
	for _, msg := range []string{"manifest directory unreadable", "manifest directory readable again"} {
		if n := framework.CountSaying(log, msg); n != 1 {
			t.Errorf("the daemon logged %q %d times, want once", msg, n)
		}
	}
	res := load.Stop()
	t.Logf("HTTP %s in a loop through the %s outage: %s", web, outageLength, res)
	if res.Failed != 0 {
		t.Errorf("%d of %d requests failed, want 0", res.Failed, res.Sent)
	}
}

// TestAPIServerOutage makes the API server unreachable for the daemon in
// cluster mode for 30 s: every packet between the node's address 10.0.2.15
// and the API server's 10.0.2.2 is dropped in the guest (iptables). The
// scenario keeps reaching the API server through the kubernetes Service's
// cluster IP 10.96.0.1:443, which the daemon programmed and keeps
// programmed, and changes an EndpointSlice during the outage. With
// a client loop running:
//   - /healthz shows sourceStaleSince while the API server is away and stays
//     200 throughout;
//   - ipvsadm -Sn and ipset save are unchanged during the outage, the
//     periodic full syncs go on and plan nothing, the change is not applied;
//   - once the API server is reachable again, the change arrives and is
//     applied by exactly its own operations (nothing flushed), the third
//     backend answers, sourceStaleSince goes away;
//   - the loop saw 0 failed requests.
//
// How long the change takes to arrive after the outage depends on client-go:
// a silently dropped connection is only given up after its HTTP/2 health
// check (30 s without a frame, then a 15 s ping timeout), and failed
// relists back off exponentially; the scenario logs the delay.
func TestAPIServerOutage(t *testing.T) {
	if _, err := os.Stat(guestKubeconfig); err != nil {
		t.Skipf("no API server on the host (%v): run with scripts/e2e.sh and E2E_APISERVER unset", err)
	}
	framework.ResetKernel(t)
	ips := []string{"10.244.1.2", "10.244.2.2", "10.244.3.2"}
	for i, ip := range ips {
		framework.NewBackend(t, fmt.Sprintf("pod-%c", 'a'+i), ip)
	}
	client := framework.Client{NS: framework.NewClientNS(t, "client", "10.250.0.2").Name, Timeout: 5 * time.Second}
	rc, err := clientcmd.BuildConfigFromFlags("", guestKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	// The scenario's direct connection to the API server is closed before the
	// outage (see apiBlock).
	direct, err := rest.HTTPClientFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	api, err := kubernetes.NewForConfigAndClient(rc, direct)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: framework.DefaultNodeName}}
	if _, err := api.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create Node: %v", err)
	}
	svc, err := api.CoreV1().Services("default").Create(ctx, &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "outage"},
		Spec: v1.ServiceSpec{Ports: []v1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080),
			Protocol: v1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = api.CoreV1().Services("default").Delete(context.Background(), "outage", metav1.DeleteOptions{})
		_ = api.DiscoveryV1().EndpointSlices("default").Delete(context.Background(), "outage-1", metav1.DeleteOptions{})
	})
	if _, err := api.DiscoveryV1().EndpointSlices("default").Create(ctx, outageSlice(ips[:2]...), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")

	proxy := framework.StartProxy(t, framework.Options{Kubeconfig: guestKubeconfig, ExtraArgs: []string{"--ipvs-sync-period", "5s"}})
	framework.Eventually(t, 30*time.Second, func() error {
		_, err := client.HTTPGet(vip)
		return err
	})
	// The scenario's own way to the API server during the outage: the
	// kubernetes Service (10.96.0.1:443 → 10.0.2.2), programmed by the daemon.
	viaVIP := *rc
	viaVIP.Host = "https://10.96.0.1:443"
	viaVIP.Timeout = 10 * time.Second
	apiViaVIP := kubernetes.NewForConfigOrDie(&viaVIP)
	framework.Eventually(t, 15*time.Second, func() error {
		_, err := apiViaVIP.Discovery().ServerVersion()
		return err
	})

	load := framework.StartLoadEvery(t, client, framework.HTTP, vip, 50*time.Millisecond)
	health := framework.WatchHealthz(t, framework.HealthzAddr, 500*time.Millisecond)
	waitSent(t, load, 10)
	syncs, fullSyncs := len(proxy.Syncs()), len(proxy.FullSyncs())

	direct.CloseIdleConnections()
	blockAPIServer(t, rc.Host)
	down := time.Now()
	t.Logf("API server blocked at %s", down.Format("15:04:05.000"))
	before := kernelSnapshot(t)
	if _, err := apiViaVIP.DiscoveryV1().EndpointSlices("default").Update(ctx, outageSlice(ips...), metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update the EndpointSlice through 10.96.0.1 during the outage: %v", err)
	}
	waitStale(t, down)
	time.Sleep(time.Until(down.Add(outageLength)))

	expectUnchanged(t, before, "while the API server was unreachable")
	if vs := framework.IPVSService(t, "TCP", vip); vs.RealServer(ips[2]+":8080") != nil {
		t.Errorf("the change made while the API server was unreachable arrived anyway (is the block working?):\n%s", ipvsadmText(t))
	}
	expectIdleFullSyncs(t, proxy.FullSyncs()[fullSyncs:], "while the API server was unreachable")

	unblockAPIServer(t)
	up := time.Now()
	arrived := waitEndpointServes(t, load, vip, ips[2]+":8080", "pod-c", 120*time.Second)
	t.Logf("the change made during the outage was applied %.1fs after the API server became reachable again", arrived.Sub(up).Seconds())
	waitNotStale(t, 30*time.Second)
	expectOnlyOps(t, proxy, syncs, fmt.Sprintf("add-rs -a -t %s -r 10.244.3.2:8080 -m -w 1", vip),
		"add-entry KUBE-LOOP-BACK 10.244.3.2,tcp:8080,10.244.3.2")
	expectHealthThroughOutage(t, health.Stop(), down, up)
	res := load.Stop()
	t.Logf("HTTP %s in a loop through the %s outage: %s", vip, outageLength, res)
	if res.Failed != 0 {
		t.Errorf("%d of %d requests failed, want 0", res.Failed, res.Sent)
	}
}

// outageSlice is the EndpointSlice of Service default/outage.
func outageSlice(ips ...string) *discovery.EndpointSlice {
	es := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "outage-1", Namespace: "default", Labels: map[string]string{discovery.LabelServiceName: "outage"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(v1.ProtocolTCP)}},
	}
	for _, ip := range ips {
		es.Endpoints = append(es.Endpoints, discovery.Endpoint{Addresses: []string{ip}, NodeName: ptr.To(framework.DefaultNodeName),
			Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}})
	}
	return es
}

// apiBlock are the iptables rules that cut the daemon off the API server:
// packets between the node's address and 10.0.2.2, both ways. A connection
// to the kubernetes Service's cluster IP passes: its local address is the
// cluster IP itself (on kube-ipvs0), which IPVS translates to 10.0.2.2 and
// MASQUERADE to the node's address only after filter OUTPUT, and back
// before filter INPUT. (Matching the daemon's connection by its conntrack
// entry does not work: it predates the daemon's first rules, so conntrack
// picked it up mid-stream, from an answer, with source and destination
// swapped. For the same reason the scenario's own direct connection is closed
// before the outage: conntrack does not know it, and MASQUERADE could give a
// connection through the cluster IP the same node port.)
var apiBlock = [][]string{
	{"OUTPUT", "-s", "10.0.2.15", "-d", "10.0.2.2", "-j", "DROP"},
	{"INPUT", "-s", "10.0.2.2", "-d", "10.0.2.15", "-j", "DROP"},
}

// blockAPIServer installs apiBlock and checks that a new connection from the
// node to the API server (host "https://10.0.2.2:PORT") now times out.
func blockAPIServer(t *testing.T, host string) {
	t.Helper()
	for _, r := range apiBlock {
		framework.Run(t, framework.IPTablesBin, append([]string{"-I"}, r...)...)
	}
	t.Cleanup(func() { unblockAPIServer(t) })
	u, err := url.Parse(host)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("%s still reachable from the node after blocking it", u.Host)
	}
}

// unblockAPIServer removes apiBlock (what is already gone is fine).
func unblockAPIServer(t *testing.T) {
	for _, r := range apiBlock {
		_, _ = framework.Output(framework.IPTablesBin, append([]string{"-D"}, r...)...)
	}
}

// waitSent waits until the load has sent n requests.
func waitSent(t *testing.T, load *framework.Load, n int) {
	t.Helper()
	framework.Eventually(t, 15*time.Second, func() error {
		if sent := load.Snapshot().Sent; sent < n {
			return fmt.Errorf("the load has sent %d requests, want %d", sent, n)
		}
		return nil
	})
}

// waitStale waits until /healthz reports the source stale (and still 200).
func waitStale(t *testing.T, down time.Time) {
	t.Helper()
	framework.Eventually(t, 25*time.Second, func() error {
		h, err := framework.GetHealthz(framework.HealthzAddr)
		switch {
		case err != nil:
			return err
		case h.SourceStaleSince == nil:
			return fmt.Errorf("/healthz has no sourceStaleSince: %s", h)
		case h.Code != 200:
			return fmt.Errorf("/healthz: %s", h)
		}
		return nil
	})
	t.Logf("/healthz reported the source stale %.1fs after the outage began", time.Since(down).Seconds())
}

// waitNotStale waits until /healthz no longer reports the source stale.
func waitNotStale(t *testing.T, timeout time.Duration) {
	t.Helper()
	framework.Eventually(t, timeout, func() error {
		h, err := framework.GetHealthz(framework.HealthzAddr)
		if err != nil {
			return err
		}
		if h.SourceStaleSince != nil {
			return fmt.Errorf("/healthz still reports the source stale: %s", h)
		}
		return nil
	})
}

// expectUnchanged compares the kernel state with a kernelSnapshot.
func expectUnchanged(t *testing.T, before map[string]string, when string) {
	t.Helper()
	after := kernelSnapshot(t)
	for _, what := range []string{"ipvsadm -Sn", "ipset save", "iptables-save"} {
		if before[what] != after[what] {
			t.Errorf("%s changed %s:\nbefore:\n%s\nafter:\n%s", what, when, before[what], after[what])
		}
	}
}

// expectIdleFullSyncs checks that full syncs happened and planned nothing.
func expectIdleFullSyncs(t *testing.T, full []framework.Sync, when string) {
	t.Helper()
	if len(full) == 0 {
		t.Errorf("no full sync %s: the periodic resync stopped", when)
	}
	for _, s := range full {
		if s.Ops != 0 || s.Incomplete() {
			t.Errorf("full sync %s: %s, planned %q; want nothing", when, s, s.Planned)
		}
	}
	t.Logf("%d full syncs %s, none planned anything", len(full), when)
}

// waitEndpointServes waits until rs is a real server of TCP vip and the
// load has been answered by backend, and returns when that was first seen.
func waitEndpointServes(t *testing.T, load *framework.Load, vip, rs, backend string, timeout time.Duration) time.Time {
	t.Helper()
	var seen time.Time
	framework.Eventually(t, timeout, func() error {
		if seen.IsZero() && framework.IPVSService(t, "TCP", vip).RealServer(rs) != nil {
			seen = time.Now()
		}
		if seen.IsZero() {
			return fmt.Errorf("TCP %s has no real server %s yet", vip, rs)
		}
		if load.Snapshot().Backends[backend] == 0 {
			return fmt.Errorf("%s has not answered the load yet", backend)
		}
		return nil
	})
	return seen
}

// expectOnlyOps checks that the syncs since the n-th planned exactly want.
func expectOnlyOps(t *testing.T, proxy *framework.Proxy, n int, want ...string) {
	t.Helper()
	ops := plannedOpsSince(proxy, n)
	if !slices.Equal(ops, want) {
		t.Errorf("operations since the outage began:\n  %s\nwant only:\n  %s", strings.Join(ops, "\n  "), strings.Join(want, "\n  "))
	}
}

// plannedOpsSince returns the operations planned by the syncs after the
// n-th since the daemon's last start (with -v 4), in order.
func plannedOpsSince(proxy *framework.Proxy, n int) []string {
	var ops []string
	for _, s := range proxy.Syncs()[n:] {
		ops = append(ops, s.Planned...)
	}
	return ops
}

// expectHealthThroughOutage checks every /healthz answer from before the
// outage (down) to after it (up): all 200, the source stale from some time
// after down until some time after up, not before down.
func expectHealthThroughOutage(t *testing.T, samples []framework.HealthzSample, down, up time.Time) {
	t.Helper()
	var bad []string
	stale := 0
	for _, s := range samples {
		switch {
		case s.Err != nil:
			bad = append(bad, fmt.Sprintf("%s: %v", s.At.Format("15:04:05.000"), s.Err))
		case s.Code != 200:
			bad = append(bad, fmt.Sprintf("%s: %s", s.At.Format("15:04:05.000"), s.Healthz))
		case s.SourceStaleSince != nil:
			stale++
			if s.SourceStaleSince.Before(down) {
				bad = append(bad, fmt.Sprintf("%s: stale since %s, before the outage began at %s", s.At.Format("15:04:05.000"),
					s.SourceStaleSince.Format("15:04:05.000"), down.Format("15:04:05.000")))
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("/healthz through the outage (%s to %s), want 200 all along:\n  %s", down.Format("15:04:05.000"),
			up.Format("15:04:05.000"), strings.Join(bad, "\n  "))
	}
	t.Logf("/healthz asked %d times through the outage: all 200, %d with sourceStaleSince", len(samples), stale)
}
