package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// trafficPolicyManifests: three endpoints, one on this node (node-1) and two
// on node-2 (they run in the VM too, so reaching them would work); a
// NodePort Service with externalTrafficPolicy Local, a ClusterIP Service
// with internalTrafficPolicy Local, and a NodePort Service with
// externalTrafficPolicy Local whose endpoints are all on node-2.
func trafficPolicyManifests() string {
	eps := append(onNode("node-1", "10.244.1.2"), onNode("node-2", "10.244.2.2", "10.244.3.2")...)
	ports := []string{"http=8080/TCP"}
	return joinYAML(`apiVersion: v1
kind: Service
metadata: {name: etp, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.40
  externalTrafficPolicy: Local
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30090, protocol: TCP}
`, sliceYAML("etp", "etp-1", ports, eps), `apiVersion: v1
kind: Service
metadata: {name: itp, namespace: default}
spec:
  clusterIP: 10.96.0.41
  internalTrafficPolicy: Local
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
`, sliceYAML("itp", "itp-1", ports, eps), `apiVersion: v1
kind: Service
metadata: {name: etp-remote, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.42
  externalTrafficPolicy: Local
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30091, protocol: TCP}
`, sliceYAML("etp-remote", "etp-remote-1", ports, onNode("node-2", "10.244.2.2", "10.244.3.2")))
}

// TestTrafficPolicyLocal: only this node's endpoints serve "Local" traffic.
//   - externalTrafficPolicy Local: the NodePort virtual server holds only the
//     local endpoint, 30090 is in KUBE-NODE-PORT-LOCAL-TCP, every request to
//     the NodePort reaches it, unmasqueraded (the backend sees the client's
//     own address), while the Service's ClusterIP still spreads over all three;
//   - internalTrafficPolicy Local: the ClusterIP virtual server holds only the
//     local endpoint and every request reaches it;
//   - externalTrafficPolicy Local without a local endpoint: the NodePort
//     virtual server has no real server and requests fail.
func TestTrafficPolicyLocal(t *testing.T) { framework.EachRulesBackend(t, trafficPolicyLocal) }

// trafficPolicyLocal is TestTrafficPolicyLocal with one rules backend (framework.CurrentRulesBackend).
func trafficPolicyLocal(t *testing.T) {
	framework.ResetKernel(t)
	framework.NewBackend(t, "local-a", "10.244.1.2")
	framework.NewBackend(t, "remote-b", "10.244.2.2")
	framework.NewBackend(t, "remote-c", "10.244.3.2")
	client := framework.NewClientNS(t, "client", "10.250.0.2")
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "policies.yaml", trafficPolicyManifests())
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)
	vss := framework.IPVSServices(t)
	all := []string{"10.244.1.2:8080", "10.244.2.2:8080", "10.244.3.2:8080"}
	nodePort := framework.NodeIP + ":30090"

	t.Run("externalTrafficPolicy Local", func(t *testing.T) {
		expectRealServers(t, vss, "TCP", nodePort, "10.244.1.2:8080")
		expectRealServers(t, vss, "TCP", "10.96.0.40:80", all...)
		if m := framework.IPSetMembers(t, "KUBE-NODE-PORT-LOCAL-TCP"); !slices.Contains(m, "30090") {
			t.Errorf("KUBE-NODE-PORT-LOCAL-TCP members %q lack 30090", m)
		}
		spread, sources := requestsWithSource(t, client.Client(), nodePort, 9)
		t.Logf("NodePort %s: 9 requests, %s; backends saw sources %v", nodePort, spread, sources)
		if spread.only() != "local-a" {
			t.Errorf("NodePort %s (externalTrafficPolicy Local): %s, want only local-a", nodePort, spread)
		}
		if len(sources) != 1 || sources[0] != client.IP {
			t.Errorf("NodePort %s (externalTrafficPolicy Local): backends saw %v, want the client's own %s", nodePort, sources, client.IP)
		}
		spread = requests(t, client.Client(), framework.HTTP, "10.96.0.40:80", 9)
		t.Logf("its ClusterIP 10.96.0.40:80: 9 requests, %s", spread)
		if len(spread) != 3 {
			t.Errorf("ClusterIP 10.96.0.40:80 (internalTrafficPolicy Cluster): %s, want all three backends", spread)
		}
	})

	t.Run("internalTrafficPolicy Local", func(t *testing.T) {
		expectRealServers(t, vss, "TCP", "10.96.0.41:80", "10.244.1.2:8080")
		spread := requests(t, client.Client(), framework.HTTP, "10.96.0.41:80", 9)
		t.Logf("ClusterIP 10.96.0.41:80: 9 requests, %s", spread)
		if spread.only() != "local-a" {
			t.Errorf("ClusterIP 10.96.0.41:80 (internalTrafficPolicy Local): %s, want only local-a", spread)
		}
	})

	t.Run("externalTrafficPolicy Local without local endpoints", func(t *testing.T) {
		target := framework.NodeIP + ":30091"
		expectRealServers(t, vss, "TCP", target)
		expectRealServers(t, vss, "TCP", "10.96.0.42:80", "10.244.2.2:8080", "10.244.3.2:8080")
		c := client.Client()
		c.Timeout = 1500 * time.Millisecond
		r, err := c.HTTPGet(target)
		if err == nil {
			t.Fatalf("NodePort %s without local endpoints answered by %s", target, r.Backend)
		}
		t.Logf("NodePort %s without local endpoints: %v (refused: %v)", target, err, framework.IsRefused(err))
	})
}
