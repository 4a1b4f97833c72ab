package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// sctpManifests: a NodePort Service of one SCTP port in front of two backends.
func sctpManifests() string {
	return joinYAML(`apiVersion: v1
kind: Service
metadata: {name: sctp, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.95
  ports:
  - {name: echo, port: 9000, targetPort: 9000, nodePort: 30098, protocol: SCTP}
`, sliceYAML("sctp", "sctp-1", []string{"echo=9000/SCTP"}, onNode("node-1", "10.244.1.2", "10.244.2.2")))
}

// TestSCTP: an SCTP Service's ClusterIP and NodePort (the node's address,
// in KUBE-NODE-PORT-SCTP-HASH) carry associations to both backends, from a
// client namespace and from the node.
func TestSCTP(t *testing.T) { framework.EachRulesBackend(t, sctp) }

// sctp is TestSCTP with one rules backend (framework.CurrentRulesBackend).
func sctp(t *testing.T) {
	framework.ResetKernel(t)
	framework.NewBackendWith(t, "pod-a", "10.244.1.2", framework.BackendOptions{SCTP: true})
	framework.NewBackendWith(t, "pod-b", "10.244.2.2", framework.BackendOptions{SCTP: true})
	client := framework.NewClientNS(t, "client", "10.250.0.2")
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "sctp.yaml", sctpManifests())
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)
	vss := framework.IPVSServices(t)
	rs := []string{"10.244.1.2:9000", "10.244.2.2:9000"}
	nodePort := framework.NodeIP + ":30098"
	expectRealServers(t, vss, "SCTP", "10.96.0.95:9000", rs...)
	expectRealServers(t, vss, "SCTP", nodePort, rs...)
	if m := framework.IPSetMembers(t, "KUBE-NODE-PORT-SCTP-HASH"); !slices.Contains(m, framework.NodeIP+",sctp:30098") {
		t.Errorf("KUBE-NODE-PORT-SCTP-HASH members %q lack %s,sctp:30098", m, framework.NodeIP)
	}
	for _, c := range []struct {
		name   string
		client framework.Client
	}{{"client namespace", client.Client()}, {"node", framework.Client{}}} {
		for _, target := range []string{"10.96.0.95:9000", nodePort} {
			spread := requests(t, c.client, framework.SCTP, target, 6)
			t.Logf("SCTP %s from the %s: 6 associations, %s", target, c.name, spread)
			if len(spread) != 2 {
				t.Errorf("SCTP %s from the %s: %s, want both backends", target, c.name, spread)
			}
		}
	}
}
