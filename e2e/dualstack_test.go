package e2e

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// dualStackManifests: a dual-stack NodePort Service with an external IP of
// each family in front of two dual-stack backends, and a single-stack IPv6
// Service in front of pod-b's IPv6 address only.
func dualStackManifests() string {
	ports := []string{"http=8080/TCP"}
	return joinYAML(`apiVersion: v1
kind: Service
metadata: {name: dual, namespace: default}
spec:
  type: NodePort
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  clusterIP: 10.96.0.90
  clusterIPs: [10.96.0.90, "fd00:96::90"]
  externalIPs: [203.0.113.90, "2001:db8::90"]
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30097, protocol: TCP}
`, sliceYAMLOf("dual", "dual-v4", "IPv4", ports, onNode("node-1", "10.244.1.2", "10.244.2.2")),
		sliceYAMLOf("dual", "dual-v6", "IPv6", ports, onNode("node-1", "fd00:244::1:2", "fd00:244::2:2")), `apiVersion: v1
kind: Service
metadata: {name: v6only, namespace: default}
spec:
  ipFamilyPolicy: SingleStack
  ipFamilies: [IPv6]
  clusterIP: "fd00:96::91"
  clusterIPs: ["fd00:96::91"]
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
`, sliceYAMLOf("v6only", "v6only-1", "IPv6", ports, onNode("node-1", "fd00:244::2:2")))
}

// TestDualStack: a dual-stack Service answers over both families on every
// kind of address (ClusterIP, NodePort on the node's IPv4 and IPv6 address,
// external IP), from a dual-stack client namespace and from the node, with
// IPv6 backends behind the IPv6 virtual servers; a single-stack IPv6 Service
// answers from its IPv6 backend; a backend reaching its own Service over IPv6
// is answered by itself too, masqueraded (KUBE-6-LOOP-BACK). With
// nodePortAddresses [0.0.0.0/0], and with [primary] and no Node object, the
// IPv6 NodePort still answers.
func TestDualStack(t *testing.T) { framework.EachRulesBackend(t, dualStack) }

// dualStack is TestDualStack with one rules backend (framework.CurrentRulesBackend).
func dualStack(t *testing.T) {
	framework.ResetKernel(t)
	a := framework.NewBackendWith(t, "pod-a", "10.244.1.2", framework.BackendOptions{IP6: "fd00:244::1:2"})
	framework.NewBackendWith(t, "pod-b", "10.244.2.2", framework.BackendOptions{IP6: "fd00:244::2:2"})
	client := framework.NewDualStackClientNS(t, "client", "10.250.0.2", "fd00:250::2")
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "dual.yaml", dualStackManifests())
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)
	vss := framework.IPVSServices(t)
	v4, v6 := []string{"10.244.1.2:8080", "10.244.2.2:8080"}, []string{"[fd00:244::1:2]:8080", "[fd00:244::2:2]:8080"}
	for _, vs := range []struct {
		addr string
		rs   []string
	}{
		{"10.96.0.90:80", v4}, {"[fd00:96::90]:80", v6}, {framework.NodeIP + ":30097", v4}, {"[" + framework.NodeIP6 + "]:30097", v6},
		{"203.0.113.90:80", v4}, {"[2001:db8::90]:80", v6}, {"[fd00:96::91]:80", v6[1:]},
	} {
		expectRealServers(t, vss, "TCP", vs.addr, vs.rs...)
	}
	for set, want := range map[string]string{"KUBE-6-CLUSTER-IP": "fd00:96::90,tcp:80", "KUBE-6-NODE-PORT-TCP": "30097", "KUBE-6-EXTERNAL-IP": "2001:db8::90,tcp:80"} {
		if m := framework.IPSetMembers(t, set); !slices.Contains(m, want) {
			t.Errorf("%s members %q lack %s", set, m, want)
		}
	}

	for _, c := range []struct {
		name   string
		client framework.Client
	}{{"client namespace", client.Client()}, {"node", framework.Client{}}} {
		for _, target := range []string{"10.96.0.90:80", "[fd00:96::90]:80", framework.NodeIP + ":30097", "[" + framework.NodeIP6 + "]:30097",
			"203.0.113.90:80", "[2001:db8::90]:80"} {
			spread, sources := requestsWithSource(t, c.client, target, 6)
			t.Logf("%s from the %s: 6 requests, %s; backends saw %v", target, c.name, spread, sources)
			if len(spread) != 2 {
				t.Errorf("%s from the %s: %s, want both backends", target, c.name, spread)
			}
		}
		spread := requests(t, c.client, framework.HTTP, "[fd00:96::91]:80", 4)
		t.Logf("single-stack IPv6 Service [fd00:96::91]:80 from the %s: %s", c.name, spread)
		if spread.only() != "pod-b" {
			t.Errorf("[fd00:96::91]:80 from the %s: %s, want only pod-b (its one IPv6 endpoint)", c.name, spread)
		}
	}

	// nodePortAddresses applies per IP family (kube-proxy's NewNodePortAddresses):
	// the common legacy 0.0.0.0/0 limits nothing and leaves IPv6 alone, and
	// primary falls back to every address of a family the Node object names
	// none of (standalone mode has no Node object)
	for _, npa := range []string{"[0.0.0.0/0]", "[primary]"} {
		proxy.Stop()
		cfg := writeConfig(t, t.TempDir(), "nodePortAddresses: "+npa+"\n")
		proxy = framework.StartProxy(t, framework.Options{ManifestDir: dir, ConfigFile: cfg})
		proxy.WaitFullSyncs(t, 1, 30*time.Second)
		for _, target := range []string{framework.NodeIP + ":30097", "[" + framework.NodeIP6 + "]:30097"} {
			spread := requests(t, client.Client(), framework.HTTP, target, 4)
			t.Logf("nodePortAddresses %s: NodePort %s from the client namespace: %s", npa, target, spread)
			if len(spread) != 2 {
				t.Errorf("nodePortAddresses %s: NodePort %s: %s, want both backends", npa, target, spread)
			}
		}
	}

	// IPv6 hairpin: pod-a asks its own Service; when it answers itself the
	// request must come from the node (masqueraded), not from its own address
	spread, self := counts{}, map[string]bool{}
	for i := 0; i < 8; i++ {
		r, err := a.Client().HTTPGet("[fd00:96::90]:80")
		if err != nil {
			t.Fatalf("hairpin request %d: %v", i+1, err)
		}
		spread[r.Backend]++
		if host, _, _ := net.SplitHostPort(r.Source); r.Backend == "pod-a" {
			self[host] = true
		}
	}
	t.Logf("hairpin: pod-a to [fd00:96::90]:80: 8 requests, %s; pod-a saw itself asking from %v", spread, self)
	if spread["pod-a"] == 0 || spread["pod-b"] == 0 {
		t.Errorf("hairpin: %s, want pod-a (itself) and pod-b", spread)
	}
	if self["fd00:244::1:2"] || !self[framework.NodeIP6] {
		t.Errorf("hairpin: pod-a saw its own requests from %v, want only %s (masqueraded)", self, framework.NodeIP6)
	}
}
