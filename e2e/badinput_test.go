package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// badManifests are cases of internal/cli/testdata/bad (named there), renamed
// so they can share one directory, each with the error the daemon must
// report for it (the object and the field): on /status under the Service
// it concerns (none for a file that names no Service), and once in the log.
var badManifests = []struct{ file, yaml, service, want string }{
	{"svc-port-zero.yaml", `apiVersion: v1
kind: Service
metadata: {name: bad-port, namespace: default}
spec:
  clusterIP: 10.96.0.21
  ports:
  - {name: http, port: 0}
`, "default/bad-port", "Service default/bad-port: spec.ports[0].port: 0 is out of range 1-65535"},
	{"svc-clusterip-invalid.yaml", `apiVersion: v1
kind: Service
metadata: {name: bad-ip, namespace: default}
spec:
  clusterIP: 10.96.0.300
  ports:
  - {name: http, port: 80}
`, "default/bad-ip", `Service default/bad-ip: spec.clusterIP: invalid IP "10.96.0.300"`},
	{"svc-protocol-unknown.yaml", `apiVersion: v1
kind: Service
metadata: {name: bad-proto, namespace: default}
spec:
  clusterIP: 10.96.0.23
  ports:
  - {name: ping, port: 7, protocol: ICMP}
`, "default/bad-proto", `Service default/bad-proto: spec.ports[0].protocol: unsupported protocol "ICMP" (allowed: TCP, UDP, SCTP)`},
	{"svc-annotation-scheduler-unknown.yaml", `apiVersion: v1
kind: Service
metadata:
  name: bad-sched
  namespace: default
  annotations: {ipvs-proxy.io/scheduler: lcx}
spec:
  clusterIP: 10.96.0.24
  ports:
  - {name: http, port: 80}
`, "default/bad-sched", `Service default/bad-sched: metadata.annotations[ipvs-proxy.io/scheduler]: unknown scheduler "lcx"`},
	// an EndpointSlice of the good Service itself, next to its good one
	{"es-endpoint-ip-invalid.yaml", `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: bad-slice
  namespace: default
  labels: {kubernetes.io/service-name: good}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.244.1.256]}]
`, "default/good", `EndpointSlice default/bad-slice: endpoints[0].addresses[0]: invalid IP "10.244.1.256"`},
	{"file-missing-kind.yaml", `apiVersion: v1
metadata: {name: bad}
`, "", "file-missing-kind.yaml: document 1: kind: missing"},
}

// goodService is Service default/good (10.96.0.10:80 → 8080) with
// EndpointSlice good-1 on ips, and extra spec lines.
func goodService(extraSpec string, ips ...string) string {
	return joinYAML(fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: good, namespace: default}
spec:
  clusterIP: 10.96.0.10
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
%s`, extraSpec), sliceYAML("good", "good-1", []string{"http=8080/TCP"}, onNode("node-1", ips...)))
}

// TestBadInputKeepsServing runs the daemon on a manifest directory holding
// broken objects of several kinds (from internal/cli/testdata/bad) next to
// one good Service:
//   - the daemon keeps running and the good Service answers from both of
//     its backends; the Service with an unknown scheduler is programmed with
//     the default (rr); nothing of the other bad objects is programmed;
//   - each bad object is reported naming the object and the field: on
//     /status under its Service, and in exactly one log line;
//   - under a client loop, the good Service's file is broken (not YAML):
//     its last good objects stay programmed; then its Service is made
//     invalid (an unknown type): its last valid version stays programmed;
//     then the file is fixed with one more endpoint: the endpoint is added.
//     The loop sees 0 failed requests.
func TestBadInputKeepsServing(t *testing.T) {
	framework.ResetKernel(t)
	framework.NewBackend(t, "pod-a", "10.244.1.2")
	framework.NewBackend(t, "pod-b", "10.244.2.2")
	framework.NewBackend(t, "pod-c", "10.244.3.2")
	client := framework.Client{NS: framework.NewClientNS(t, "client", "10.250.0.2").Name, Timeout: 5 * time.Second}
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "good.yaml", goodService("", "10.244.1.2", "10.244.2.2"))
	for _, b := range badManifests {
		framework.WriteManifest(t, dir, b.file, b.yaml)
	}
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)
	const vip = "10.96.0.10:80"

	spread := requests(t, client, framework.HTTP, vip, 4)
	t.Logf("the good Service among %d broken objects: %s", len(badManifests), spread)
	if len(spread) != 2 {
		t.Errorf("good Service: %s, want both backends", spread)
	}
	vss := framework.IPVSServices(t)
	if len(vss) != 2 || framework.FindVirtualServer(vss, "TCP", "10.96.0.24:80") == nil ||
		framework.FindVirtualServer(vss, "TCP", "10.96.0.24:80").Scheduler != "rr" {
		t.Errorf("want only the good Service and bad-sched (rr) programmed:\n%s", ipvsadmText(t))
	}
	expectRealServers(t, vss, "TCP", vip, "10.244.1.2:8080", "10.244.2.2:8080")
	problems, err := framework.Problems(framework.MetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	// The operator reads the log: each bad object is told there once. This
	// checks the log as people read it; what the daemon rejected is read
	// from /status.
	log := framework.ParseLog(proxy.Logs())
	for _, b := range badManifests {
		if b.service != "" && !framework.HasProblem(problems, b.service, b.want) {
			t.Errorf("%s: /status lists no problem %q under %s: %q", b.file, b.want, b.service, problems[b.service])
		}
		if n := framework.CountSaying(log, b.want); n != 1 {
			t.Errorf("%s: %d log lines say %q, want 1", b.file, n, b.want)
		}
	}

	load := framework.StartLoadEvery(t, client, framework.HTTP, vip, 50*time.Millisecond)
	waitSent(t, load, 10)
	before := kernelSnapshot(t)
	// service: the error is on /status under this Service; none: a file
	// that cannot be read names no Service, and only the log tells it.
	steps := []struct{ name, yaml, service, want string }{
		{"not YAML", "apiVersion: v1\nkind: Service\nmetadata:\n  name: good\n   namespace: default\n", "", "good.yaml: document 1: not valid YAML or JSON"},
		{"an invalid Service", goodService("  type: NodePrt\n", "10.244.1.2", "10.244.2.2"), "default/good",
			"Service default/good: keeping its last valid version in the kernel until it is fixed"},
	}
	for _, s := range steps {
		logMark := len(proxy.Logs())
		framework.WriteManifest(t, dir, "good.yaml", s.yaml)
		framework.Eventually(t, 10*time.Second, func() error {
			if s.service == "" {
				if framework.CountSaying(framework.ParseLog(proxy.Logs()[logMark:]), s.want) == 0 {
					return fmt.Errorf("the daemon has not logged %q yet", s.want)
				}
				return nil
			}
			problems, err := framework.Problems(framework.MetricsAddr)
			if err != nil {
				return err
			}
			if !framework.HasProblem(problems, s.service, s.want) {
				return fmt.Errorf("/status has no problem %q under %s yet: %q", s.want, s.service, problems[s.service])
			}
			return nil
		})
		time.Sleep(time.Second) // the sync that follows, if any
		expectUnchanged(t, before, "after the good Service's file became "+s.name)
		t.Logf("good.yaml %s: %s", s.name, load.Snapshot())
	}
	framework.WriteManifest(t, dir, "good.yaml", goodService("", "10.244.1.2", "10.244.2.2", "10.244.3.2"))
	fixed := time.Now()
	arrived := waitEndpointServes(t, load, vip, "10.244.3.2:8080", "pod-c", 15*time.Second)
	t.Logf("fixed good.yaml (with a third endpoint) applied %.1fs after the write", arrived.Sub(fixed).Seconds())
	res := load.Stop()
	t.Logf("HTTP %s in a loop while its file was broken and fixed: %s", vip, res)
	if res.Failed != 0 {
		t.Errorf("%d of %d requests failed, want 0", res.Failed, res.Sent)
	}
	if !proxy.Running() {
		t.Errorf("the daemon exited")
	}
}
