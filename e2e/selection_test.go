package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// selEndpoint is an endpoint of selectionManifests: address, node,
// conditions and topology hints.
type selEndpoint struct {
	ip, node                    string
	ready, serving, terminating bool
	zone, hintZones, hintNodes  string // hints comma-separated; "" for none
}

// selectionManifests: Service name (ClusterIP 10.96.0.<octet>:80, an extra
// spec line such as "trafficDistribution: PreferClose") with one
// EndpointSlice of the endpoints.
func selectionManifests(name string, octet int, extra string, eps []selEndpoint) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: Service
metadata: {name: %s, namespace: default}
spec:
  clusterIP: 10.96.0.%d
  %s
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %s-1
  namespace: default
  labels: {kubernetes.io/service-name: %s}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
`, name, octet, extra, name, name)
	for _, e := range eps {
		fmt.Fprintf(&b, "- addresses: [%s]\n  nodeName: %s\n  conditions: {ready: %t, serving: %t, terminating: %t}\n", e.ip, e.node, e.ready, e.serving, e.terminating)
		if e.zone != "" {
			fmt.Fprintf(&b, "  zone: %s\n", e.zone)
		}
		if e.hintZones != "" || e.hintNodes != "" {
			b.WriteString("  hints:\n")
			if e.hintZones != "" {
				b.WriteString("    forZones: [" + names(e.hintZones) + "]\n")
			}
			if e.hintNodes != "" {
				b.WriteString("    forNodes: [" + names(e.hintNodes) + "]\n")
			}
		}
	}
	return b.String()
}

func names(list string) string {
	var out []string
	for _, n := range strings.Split(list, ",") {
		out = append(out, "{name: "+n+"}")
	}
	return strings.Join(out, ", ")
}

// answering returns the backends that answer 9 requests to target.
func answering(t *testing.T, c framework.Client, target string) []string {
	t.Helper()
	spread := requests(t, c, framework.HTTP, target, 9)
	var out []string
	for b := range spread {
		out = append(out, b)
	}
	slices.Sort(out)
	t.Logf("%s: 9 requests, %s", target, spread)
	return out
}

// TestEndpointSelection: which endpoints get a Service's traffic on this node
// (node-1, zone-a), as kube-proxy chooses them, with traffic from a client
// namespace:
//   - terminating fallback: with only serving-but-terminating endpoints they
//     get the traffic; once a ready one appears, only it; once none is serving,
//     requests are refused;
//   - topology hints by zone (trafficDistribution PreferClose, hints as the
//     EndpointSlice controller writes them): only the endpoints hinted for
//     zone-a; when one ready endpoint has no hint, hints are ignored;
//   - trafficDistribution PreferSameNode: only the endpoint hinted for node-1.
func TestEndpointSelection(t *testing.T) {
	framework.ResetKernel(t)
	framework.NewBackend(t, "a1", "10.244.1.2") // node-1, zone-a
	framework.NewBackend(t, "a2", "10.244.2.2") // node-2, zone-a
	framework.NewBackend(t, "b3", "10.244.3.2") // node-3, zone-b
	client := framework.NewClientNS(t, "client", "10.250.0.2").Client()
	dir := t.TempDir()
	term := func(ready, serving bool) []selEndpoint {
		return []selEndpoint{
			{ip: "10.244.1.2", node: "node-1", ready: false, serving: true, terminating: true},
			{ip: "10.244.2.2", node: "node-2", ready: false, serving: true, terminating: true},
			{ip: "10.244.3.2", node: "node-3", ready: ready, serving: serving, terminating: !ready},
		}
	}
	framework.WriteManifest(t, dir, "term.yaml", selectionManifests("term", 130, "", term(false, true)))
	zoned := func(hintB3 bool) []selEndpoint {
		eps := []selEndpoint{
			{ip: "10.244.1.2", node: "node-1", ready: true, serving: true, zone: "zone-a", hintZones: "zone-a"},
			{ip: "10.244.2.2", node: "node-2", ready: true, serving: true, zone: "zone-a", hintZones: "zone-a"},
			{ip: "10.244.3.2", node: "node-3", ready: true, serving: true, zone: "zone-b"},
		}
		if hintB3 {
			eps[2].hintZones = "zone-b"
		}
		return eps
	}
	framework.WriteManifest(t, dir, "zone.yaml", selectionManifests("zone", 131, "trafficDistribution: PreferClose", zoned(true)))
	framework.WriteManifest(t, dir, "node.yaml", selectionManifests("same-node", 132, "trafficDistribution: PreferSameNode", []selEndpoint{
		{ip: "10.244.1.2", node: "node-1", ready: true, serving: true, zone: "zone-a", hintZones: "zone-a", hintNodes: "node-1"},
		{ip: "10.244.2.2", node: "node-2", ready: true, serving: true, zone: "zone-a", hintZones: "zone-a", hintNodes: "node-2"},
		{ip: "10.244.3.2", node: "node-3", ready: true, serving: true, zone: "zone-b", hintZones: "zone-b", hintNodes: "node-3"},
	}))
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir, ExtraArgs: []string{"--node-labels", "topology.kubernetes.io/zone=zone-a"}})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)

	t.Run("terminating fallback", func(t *testing.T) {
		if got := answering(t, client, "10.96.0.130:80"); !slices.Equal(got, []string{"a1", "a2", "b3"}) {
			t.Errorf("only serving-terminating endpoints: answered by %v, want all three", got)
		}
		framework.WriteManifest(t, dir, "term.yaml", selectionManifests("term", 130, "", term(true, true)))
		framework.Eventually(t, 20*time.Second, func() error {
			if got := answering(t, client, "10.96.0.130:80"); !slices.Equal(got, []string{"b3"}) {
				return fmt.Errorf("with b3 ready: answered by %v, want only b3", got)
			}
			return nil
		})
		framework.WriteManifest(t, dir, "term.yaml", selectionManifests("term", 130, "", []selEndpoint{
			{ip: "10.244.1.2", node: "node-1", terminating: true}, {ip: "10.244.2.2", node: "node-2", terminating: true},
			{ip: "10.244.3.2", node: "node-3", terminating: true},
		}))
		framework.Eventually(t, 20*time.Second, func() error {
			c := client
			c.Timeout = 1500 * time.Millisecond
			if r, err := c.HTTPGet("10.96.0.130:80"); err == nil {
				return fmt.Errorf("with no serving endpoint: answered by %s", r.Backend)
			} else if !framework.IsRefused(err) {
				return fmt.Errorf("with no serving endpoint: %w, want refused", err)
			}
			return nil
		})
		t.Logf("with no serving endpoint: refused")
	})

	t.Run("topology hints by zone", func(t *testing.T) {
		if got := answering(t, client, "10.96.0.131:80"); !slices.Equal(got, []string{"a1", "a2"}) {
			t.Errorf("hints for zone-a: answered by %v, want a1 and a2 (zone-a)", got)
		}
		framework.WriteManifest(t, dir, "zone.yaml", selectionManifests("zone", 131, "trafficDistribution: PreferClose", zoned(false)))
		framework.Eventually(t, 20*time.Second, func() error {
			if got := answering(t, client, "10.96.0.131:80"); !slices.Equal(got, []string{"a1", "a2", "b3"}) {
				return fmt.Errorf("b3 without a hint: answered by %v, want all three (hints ignored)", got)
			}
			return nil
		})
	})

	t.Run("PreferSameNode", func(t *testing.T) {
		if got := answering(t, client, "10.96.0.132:80"); !slices.Equal(got, []string{"a1"}) {
			t.Errorf("hints for node-1: answered by %v, want only a1", got)
		}
	})
}
