package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// manifests of a ClusterIP Service web (10.96.0.10:80 → backends' 8080)
// with the given endpoints on node-1.
func webService(vip string, extraSpec string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: %s
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
%s`, vip, extraSpec)
}

func webSlice(name string, ips ...string) string {
	var eps strings.Builder
	for _, ip := range ips {
		fmt.Fprintf(&eps, "- addresses: [%s]\n  conditions: {ready: true}\n  nodeName: node-1\n", ip)
	}
	return fmt.Sprintf(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %s
  namespace: default
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
%s`, name, eps.String())
}

// TestClusterIP: a ClusterIP Service with three endpoints shows in ipvsadm
// as `TCP VIP:80 rr` with `Masq 1` real servers, the VIP is on kube-ipvs0,
// and requests rotate over the backends from the node and from a client namespace.
func TestClusterIP(t *testing.T) { framework.EachRulesBackend(t, clusterIP) }

// clusterIP is TestClusterIP with one rules backend (framework.CurrentRulesBackend).
func clusterIP(t *testing.T) {
	framework.ResetKernel(t)
	a := framework.NewBackend(t, "pod-a", "10.244.1.2")
	b := framework.NewBackend(t, "pod-b", "10.244.2.2")
	c := framework.NewBackend(t, "pod-c", "10.244.3.2")
	client := framework.NewClientNS(t, "client", "10.250.0.2")
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "web.yaml", webService("10.96.0.10", "")+"---\n"+webSlice("web-1", "10.244.1.2", "10.244.2.2", "10.244.3.2"))
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir})

	framework.Eventually(t, 20*time.Second, func() error {
		_, err := framework.Client{}.HTTPGet("10.96.0.10:80")
		return err
	})
	proxy.WaitFullSyncs(t, 1, 30*time.Second) // traffic flows once IPVS has the virtual server: the rules come last
	expectRulesBackend(t)
	ipvs := framework.IPVSADM(t, "-Ln")
	if !strings.Contains(ipvs, "TCP  10.96.0.10:80 rr") {
		t.Errorf("ipvsadm -Ln lacks the virtual server:\n%s", ipvs)
	}
	for _, be := range []*framework.Backend{a, b, c} {
		if !strings.Contains(ipvs, "-> "+be.Addr(8080)) || !strings.Contains(ipvs, "Masq    1") {
			t.Errorf("ipvsadm -Ln lacks real server %s Masq 1:\n%s", be.Addr(8080), ipvs)
		}
	}
	if addrs := framework.Addrs(t, "kube-ipvs0"); len(addrs) != 1 || addrs[0] != "10.96.0.10/32" {
		t.Errorf("kube-ipvs0 addresses %v", addrs)
	}
	for _, cl := range []framework.Client{{}, client.Client()} {
		seen := map[string]int{}
		for i := 0; i < 9; i++ {
			r, err := cl.HTTPGet("10.96.0.10:80")
			if err != nil {
				t.Fatalf("request %d from %q: %v", i, cl.NS, err)
			}
			seen[r.Backend]++
		}
		if len(seen) != 3 || seen["pod-a"] != 3 {
			t.Errorf("from %q: rr spread %v, want 3 each", cl.NS, seen)
		}
	}
}
