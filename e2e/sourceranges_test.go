package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// sourceRangeManifests: two LoadBalancer Services open only to
// 10.250.1.0/24; the second also to the node's own address.
func sourceRangeManifests() string {
	eps := onNode("node-1", "10.244.1.2", "10.244.2.2")
	ports := []string{"http=8080/TCP"}
	lb := func(name, clusterIP, nodePort, ingress, ranges string) string {
		return `apiVersion: v1
kind: Service
metadata: {name: ` + name + `, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: ` + clusterIP + `
  loadBalancerSourceRanges: [` + ranges + `]
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: ` + nodePort + `, protocol: TCP}
status:
  loadBalancer:
    ingress:
    - ip: ` + ingress + `
`
	}
	return joinYAML(
		lb("lb-deny", "10.96.0.70", "30170", "198.51.100.20", "10.250.1.0/24"), sliceYAML("lb-deny", "lb-deny-1", ports, eps),
		lb("lb-node", "10.96.0.71", "30171", "198.51.100.21", "10.250.1.0/24, "+framework.NodeIP+"/32"), sliceYAML("lb-node", "lb-node-1", ports, eps))
}

// TestSourceRangesFromNode: loadBalancerSourceRanges hold for every source,
// the node itself included (kubernetes#119656: IPVS takes the node's own
// connections at LOCAL_OUT, past the INPUT firewall). Each load balancer IP
// is asked from a client inside the ranges, one outside them, a pod on this
// node and the node:
//   - 198.51.100.20 (open to 10.250.1.0/24): only the client inside the
//     ranges is answered; the outside client, the pod and the node are
//     dropped (the node by the mangle OUTPUT check, the others in INPUT);
//   - 198.51.100.21 (also open to the node's address): the node is answered
//     too (KUBE-LOAD-BALANCER-SOURCE-IP), the pod and the outside client are
//     still dropped;
//   - both Services' ClusterIPs answer everyone.
func TestSourceRangesFromNode(t *testing.T) { framework.EachRulesBackend(t, sourceRangesFromNode) }

// sourceRangesFromNode is TestSourceRangesFromNode with one rules backend (framework.CurrentRulesBackend).
func sourceRangesFromNode(t *testing.T) {
	framework.ResetKernel(t)
	framework.NewBackend(t, "pod-a", "10.244.1.2")
	framework.NewBackend(t, "pod-b", "10.244.2.2")
	inside := framework.NewClientNS(t, "inside", "10.250.1.2")
	outside := framework.NewClientNS(t, "outside", "10.250.2.2")
	pod := framework.NewClientNS(t, "pod", "10.244.9.2")
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "lb.yaml", sourceRangeManifests())
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)

	if m := framework.IPSetMembers(t, "KUBE-LOAD-BALANCER-SOURCE-IP"); !slices.Equal(m, []string{"198.51.100.21,tcp:80,198.51.100.21"}) {
		t.Errorf("KUBE-LOAD-BALANCER-SOURCE-IP members %q, want only 198.51.100.21,tcp:80,198.51.100.21 (the node is inside lb-node's ranges)", m)
	}
	clients := []struct {
		name   string
		client framework.Client
	}{
		{"client inside the ranges (10.250.1.2)", inside.Client()},
		{"client outside the ranges (10.250.2.2)", outside.Client()},
		{"pod on this node (10.244.9.2)", pod.Client()},
		{"node", framework.Client{}},
	}
	for _, c := range []struct {
		lbIP, clusterIP string
		answered        []bool // per client above
	}{
		{"198.51.100.20", "10.96.0.70", []bool{true, false, false, false}},
		{"198.51.100.21", "10.96.0.71", []bool{true, false, false, true}},
	} {
		for i, cl := range clients {
			target := c.lbIP + ":80"
			if c.answered[i] {
				spread, sources := requestsWithSource(t, cl.client, target, 4)
				t.Logf("%s from the %s: 4 requests, %s; backends saw %v", target, cl.name, spread, sources)
				continue
			}
			quick := cl.client
			quick.Timeout = 1500 * time.Millisecond
			if r, err := quick.HTTPGet(target); err == nil {
				t.Errorf("%s from the %s (outside the source ranges): answered by %s", target, cl.name, r.Backend)
			} else {
				t.Logf("%s from the %s: not answered (%v)", target, cl.name, err)
			}
			spread := requests(t, cl.client, framework.HTTP, c.clusterIP+":80", 2)
			t.Logf("its ClusterIP %s:80 from the %s: %s", c.clusterIP, cl.name, spread)
		}
	}
}
