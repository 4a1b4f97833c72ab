package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

const serviceCIDRManifest = `apiVersion: networking.k8s.io/v1
kind: ServiceCIDR
metadata: {name: kubernetes}
spec:
  cidrs: [10.96.0.0/16]
`

// TestServiceCIDRs: traffic to an address inside the service CIDRs that no
// Service has is dropped, as kube-proxy's nftables mode does, instead of
// following the node's routes off the node. An "upstream" namespace holds
// 10.96.5.5 and the node routes 10.96.0.0/16 to it, as a default route
// would: without ServiceCIDR objects a pod, the node and an outside client
// reaching 10.96.5.5 are answered by "upstream"; with the ServiceCIDR
// 10.96.0.0/16 they are dropped (time out), while a Service's ClusterIP keeps
// answering and one of its ports that does not exist is refused.
func TestServiceCIDRs(t *testing.T) { framework.EachRulesBackend(t, serviceCIDRs) }

// serviceCIDRs is TestServiceCIDRs with one rules backend (framework.CurrentRulesBackend).
func serviceCIDRs(t *testing.T) {
	framework.ResetKernel(t)
	framework.NewBackend(t, "pod-a", "10.244.1.2")
	up := framework.NewBackend(t, "upstream", "10.99.0.2")
	up.Run(t, framework.IPBin, "addr", "add", "10.96.5.5/32", "dev", "lo")
	framework.Run(t, framework.IPBin, "route", "add", "10.96.0.0/16", "dev", up.HostVeth)
	clients := []struct {
		name   string
		client framework.Client
	}{
		{"pod (10.244.9.2)", framework.NewClientNS(t, "pod", "10.244.9.2").Client()},
		{"node", framework.Client{}},
		{"outside client (10.250.0.2)", framework.NewClientNS(t, "outside", "10.250.0.2").Client()},
	}
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "web.yaml", joinYAML(`apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.140
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
`, sliceYAML("web", "web-1", []string{"http=8080/TCP"}, onNode("node-1", "10.244.1.2"))))
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)

	for _, c := range clients {
		spread := requests(t, c.client, framework.HTTP, "10.96.5.5:80", 2)
		t.Logf("without ServiceCIDRs: unallocated 10.96.5.5:80 from the %s: %s (left the node)", c.name, spread)
		if spread.only() != "upstream" {
			t.Errorf("without ServiceCIDRs: 10.96.5.5:80 from the %s: %s, want upstream (the node's route)", c.name, spread)
		}
	}

	framework.WriteManifest(t, dir, "cidr.yaml", serviceCIDRManifest)
	framework.Eventually(t, 20*time.Second, func() error {
		if m := framework.IPSetMembers(t, "KUBE-SERVICE-CIDRS"); len(m) != 1 || m[0] != "10.96.0.0/16" {
			return fmt.Errorf("KUBE-SERVICE-CIDRS members %v, want 10.96.0.0/16", m)
		}
		return nil
	})
	for _, c := range clients {
		quick := c.client
		quick.Timeout = 1500 * time.Millisecond
		r, err := quick.HTTPGet("10.96.5.5:80")
		switch {
		case err == nil:
			t.Errorf("with ServiceCIDR 10.96.0.0/16: unallocated 10.96.5.5:80 from the %s answered by %s", c.name, r.Backend)
		case !framework.IsTimeout(err):
			t.Errorf("with ServiceCIDR 10.96.0.0/16: unallocated 10.96.5.5:80 from the %s: %v, want a timeout (dropped)", c.name, err)
		default:
			t.Logf("with ServiceCIDR 10.96.0.0/16: unallocated 10.96.5.5:80 from the %s: dropped (%v)", c.name, err)
		}
		spread := requests(t, c.client, framework.HTTP, "10.96.0.140:80", 2)
		t.Logf("ClusterIP 10.96.0.140:80 from the %s: %s", c.name, spread)
		if _, err := quick.HTTPGet("10.96.0.140:81"); !framework.IsRefused(err) {
			t.Errorf("10.96.0.140:81 (no such port) from the %s: %v, want refused", c.name, err)
		}
	}
}
