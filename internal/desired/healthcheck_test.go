package desired

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// lbLocal is a LoadBalancer Service with externalTrafficPolicy Local, two
// ports and the given healthCheckNodePort.
func lbLocal(name, clusterIP string, hcPort int32) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeLoadBalancer, ClusterIP: clusterIP,
			ExternalTrafficPolicy: v1.ServiceExternalTrafficPolicyLocal, HealthCheckNodePort: hcPort,
			Ports: []v1.ServicePort{
				{Name: "http", Port: 80, Protocol: v1.ProtocolTCP, NodePort: 30080},
				{Name: "https", Port: 443, Protocol: v1.ProtocolTCP, NodePort: 30443},
			}},
	}
}

// healthSlice has, for ports http (8080) and https (8443): a ready local
// endpoint, a serving but terminating local one, a not ready local one and a
// ready one on another node.
func healthSlice(service string) *discovery.EndpointSlice {
	ep := func(ip, node string, ready, serving, terminating bool) discovery.Endpoint {
		return discovery.Endpoint{Addresses: []string{ip}, NodeName: ptr.To(node),
			Conditions: discovery.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating}}
	}
	return &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: service + "-1", Labels: map[string]string{discovery.LabelServiceName: service}},
		AddressType: discovery.AddressTypeIPv4,
		Ports: []discovery.EndpointPort{
			{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(v1.ProtocolTCP)},
			{Name: ptr.To("https"), Port: ptr.To[int32](8443), Protocol: ptr.To(v1.ProtocolTCP)},
		},
		Endpoints: []discovery.Endpoint{
			ep("10.244.1.2", "node1", true, true, false),
			ep("10.244.1.3", "node1", false, true, true),
			ep("10.244.1.4", "node1", false, false, false),
			ep("10.244.2.2", "node2", true, true, false),
		},
	}
}

// TestHealthCheckLocalEndpoints: the count a healthCheckNodePort reports is
// kube-proxy's: this node's ready endpoints, one per address whatever the
// number of ports, without serving-terminating or not ready ones.
func TestHealthCheckLocalEndpoints(t *testing.T) {
	f := ForService(testInput(), lbLocal("web", "10.96.0.80", 32000), []*discovery.EndpointSlice{healthSlice("web")})
	if f.HealthCheckNodePort != 32000 || f.LocalEndpoints != 1 {
		t.Errorf("health check port %d with %d local endpoints, want 32000 with 1 (10.244.1.2, once for both ports)",
			f.HealthCheckNodePort, f.LocalEndpoints)
	}
}

// TestHealthCheckPortShared: two Services with one healthCheckNodePort: the
// one whose namespace/name sorts first keeps it, the other gets an error
// naming the field and the Service that keeps it, and gets the port when
// that one goes.
func TestHealthCheckPortShared(t *testing.T) {
	in := testInput()
	a, b := lbLocal("a", "10.96.0.81", 32000), lbLocal("b", "10.96.0.82", 32000)
	b.Spec.Ports[0].NodePort, b.Spec.Ports[1].NodePort = 31080, 31443
	x, errs := Build(in, []*v1.Service{b, a}, []*discovery.EndpointSlice{healthSlice("a")})
	if got := x.HealthChecks(); len(got) != 1 || got[32000].Service != "default/a" || got[32000].LocalEndpoints != 1 {
		t.Errorf("health checks %+v, want port 32000 for default/a with 1 local endpoint", got)
	}
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	want := "Service default/b: spec.healthCheckNodePort: 32000 is also the health check port of Service default/a, which keeps it"
	if len(msgs) != 1 || msgs[0] != want {
		t.Errorf("errors %q, want only %q", msgs, want)
	}
	if errs := x.Errors("default/a"); len(errs) != 0 {
		t.Errorf("default/a has errors %v, want none", errs)
	}

	x.Replace("default/a", nil, NewTouched())
	if got := x.HealthChecks(); len(got) != 1 || got[32000].Service != "default/b" {
		t.Errorf("after default/a is gone: health checks %+v, want port 32000 for default/b", got)
	}
	if errs := x.Errors("default/b"); len(errs) != 0 {
		t.Errorf("after default/a is gone: default/b has errors %v", errs)
	}
	if changed := x.TakeConflictChanges(); !strings.Contains(strings.Join(changed, " "), "default/b") {
		t.Errorf("services whose conflicts changed: %v, want default/b among them", changed)
	}
}
