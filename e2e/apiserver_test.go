package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// guestKubeconfig is written by scripts/e2e.sh for the API server it runs on
// the host, reachable from the guest at 10.0.2.2.
const guestKubeconfig = "/mnt/host/k8s/kubeconfig-guest"

// TestAPIServerSource runs the daemon in cluster mode against a real
// kube-apiserver on the host: the API server's own Service (default/kubernetes)
// becomes a virtual server that reaches the API server, and a Service and
// EndpointSlice created through the API carry traffic to the backends, then
// disappear when deleted.
func TestAPIServerSource(t *testing.T) {
	if _, err := os.Stat(guestKubeconfig); err != nil {
		t.Skipf("no API server on the host (%v): run with scripts/e2e.sh and E2E_APISERVER unset", err)
	}
	framework.ResetKernel(t)
	framework.NewBackend(t, "pod-a", "10.244.1.2")
	framework.NewBackend(t, "pod-b", "10.244.2.2")
	rc, err := clientcmd.BuildConfigFromFlags("", guestKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(rc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: framework.DefaultNodeName}}
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Node: %v", err)
	}
	framework.StartProxy(t, framework.Options{Kubeconfig: guestKubeconfig})

	// default/kubernetes: 10.96.0.1:443 → the API server, through IPVS
	framework.Eventually(t, 30*time.Second, func() error {
		if out := framework.IPVSADM(t, "-Ln"); !strings.Contains(out, "TCP  10.96.0.1:443 rr") {
			return fmt.Errorf("no virtual server for default/kubernetes yet")
		}
		return nil
	})
	viaVIP := *rc
	viaVIP.Host = "https://10.96.0.1:443"
	v, err := kubernetes.NewForConfigOrDie(&viaVIP).Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("API server through its cluster IP: %v", err)
	}
	t.Logf("API server %s answered through 10.96.0.1:443", v.GitVersion)

	svc, err := client.CoreV1().Services("default").Create(ctx, &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       v1.ServiceSpec{Ports: []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vip := svc.Spec.ClusterIP
	created := time.Now()
	_, err = client.DiscoveryV1().EndpointSlices("default").Create(ctx, &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discovery.LabelServiceName: "web"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(v1.ProtocolTCP)}},
		Endpoints: []discovery.Endpoint{
			{Addresses: []string{"10.244.1.2"}, NodeName: ptr.To("node-1")},
			{Addresses: []string{"10.244.2.2"}, NodeName: ptr.To("node-1")},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 10*time.Second, func() error {
		_, err := framework.Client{}.HTTPGet(vip + ":80")
		return err
	})
	t.Logf("Service %s reachable %v after its EndpointSlice was created", vip, time.Since(created).Round(time.Millisecond))
	seen := map[string]int{}
	for i := 0; i < 10; i++ {
		r, err := framework.Client{}.HTTPGet(vip + ":80")
		if err != nil {
			t.Fatal(err)
		}
		seen[r.Backend]++
	}
	if seen["pod-a"] != 5 || seen["pod-b"] != 5 {
		t.Errorf("10 requests spread %v, want 5 and 5", seen)
	}
	t.Logf("10 requests: %v", seen)

	if err := client.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 10*time.Second, func() error {
		if strings.Contains(framework.IPVSADM(t, "-Ln"), vip+":80") {
			return fmt.Errorf("virtual server %s:80 still there", vip)
		}
		return nil
	})
}
