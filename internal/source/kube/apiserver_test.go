package kube

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	networking "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/apiserver"
)

// TestAgainstRealAPIServer runs the API server source and the proxier (over
// a fake kernel) against a real kube-apiserver: Services and EndpointSlices
// created, scaled and deleted through the API reach the kernel within a
// second, and Services another proxy owns, or headless ones, are never cached.
func TestAgainstRealAPIServer(t *testing.T) {
	srv := apiserver.StartForTest(t, apiserver.Options{})
	client := kubernetes.NewForConfigOrDie(srv.RESTConfig())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	_, err := client.CoreV1().Nodes().Create(ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1",
		Labels: map[string]string{v1.LabelTopologyZone: "zone-a"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fk := fake.New(netip.MustParseAddr("10.0.0.1"))
	cfg := config.Default()
	p := proxier.New(proxier.Config{Kernel: fk.Interfaces(), Config: cfg})
	src := NewWithClient(Config{NodeName: "node-1", NodeWait: time.Second}, client)
	done := make(chan struct{}, 2)
	go func() { _ = src.Run(ctx, p); done <- struct{}{} }()
	go func() { _ = p.Run(ctx); done <- struct{}{} }()
	defer func() { cancel(); <-done; <-done }()

	within := func(what string, d time.Duration, ok func(ipvs string) bool) {
		t.Helper()
		start := time.Now()
		for !ok(fk.IPVS.Save()) {
			if time.Since(start) > d {
				t.Fatalf("%s: not in the kernel after %v:\n%s", what, d, fk.IPVS.Save())
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
	}
	// the API server's own Service comes first
	within("default/kubernetes", 10*time.Second, func(s string) bool { return strings.Contains(s, "-A -t 10.96.0.1:443 -s rr") })

	// the ServiceCIDR the API server made from --service-cluster-ip-range,
	// then one more, reach KUBE-SERVICE-CIDRS
	sets := func(what string, want string) {
		t.Helper()
		start := time.Now()
		for !strings.Contains(fk.IPSet.Save(), want) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s: no %q in the ipsets after 10s:\n%s", what, want, fk.IPSet.Save())
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
	}
	sets("ServiceCIDR kubernetes", "add KUBE-SERVICE-CIDRS 10.96.0.0/16")
	extra := &networking.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "extra"}, Spec: networking.ServiceCIDRSpec{CIDRs: []string{"10.97.0.0/24"}}}
	if _, err := client.NetworkingV1().ServiceCIDRs().Create(ctx, extra, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sets("ServiceCIDR extra", "add KUBE-SERVICE-CIDRS 10.97.0.0/24")

	svc := &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: v1.ServiceSpec{Ports: []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}}}}
	created, err := client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vip := created.Spec.ClusterIP
	slice := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{discovery.LabelServiceName: "web"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(v1.ProtocolTCP)}},
		Endpoints:   []discovery.Endpoint{{Addresses: []string{"10.244.1.1"}}},
	}
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	within("create", time.Second, func(s string) bool {
		return strings.Contains(s, fmt.Sprintf("-a -t %s:80 -r 10.244.1.1:8080 -m -w 1", vip))
	})

	slice.Endpoints = append(slice.Endpoints, discovery.Endpoint{Addresses: []string{"10.244.1.2"}}, discovery.Endpoint{Addresses: []string{"10.244.1.3"}})
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	within("scale to 3", time.Second, func(s string) bool { return strings.Count(s, "-a -t "+vip+":80") == 3 })

	// Services another proxy owns, or headless ones, must never be cached
	for _, lbl := range []map[string]string{{LabelServiceProxyName: "someone-else"}, {LabelHeadless: ""}} {
		other := &v1.Service{ObjectMeta: metav1.ObjectMeta{GenerateName: "excluded-", Namespace: "default", Labels: lbl},
			Spec: v1.ServiceSpec{Ports: []v1.ServicePort{{Port: 81, Protocol: v1.ProtocolTCP}}}}
		if _, err := client.CoreV1().Services("default").Create(ctx, other, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	if err := client.DiscoveryV1().EndpointSlices("default").Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	within("delete", time.Second, func(s string) bool { return !strings.Contains(s, vip+":80") })
	time.Sleep(200 * time.Millisecond) // the excluded Services had time to arrive, were they not filtered
	for _, obj := range src.services.GetStore().List() {
		if s := obj.(*v1.Service); strings.HasPrefix(s.Name, "excluded-") {
			t.Errorf("informer cached excluded Service %s (labels %v)", s.Name, s.Labels)
		}
	}
	if strings.Contains(fk.IPVS.Save(), ":81 ") {
		t.Errorf("excluded Service programmed:\n%s", fk.IPVS.Save())
	}
}
