package desired

import (
	"fmt"
	"net/netip"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

func testInput() *Input {
	return NewInput(config.Default(), Node{Name: "node1", Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.1")}})
}

func clusterIPService(name, ip string, externalIPs ...string) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: v1.ServiceSpec{ClusterIP: ip, ExternalIPs: externalIPs,
			Ports: []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}}},
	}
}

func slice(service string, ips ...string) *discovery.EndpointSlice {
	es := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: service + "-1", Labels: map[string]string{discovery.LabelServiceName: service}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(v1.ProtocolTCP)}},
	}
	for _, ip := range ips {
		es.Endpoints = append(es.Endpoints, discovery.Endpoint{Addresses: []string{ip}, NodeName: ptr.To("node2")})
	}
	return es
}

func TestIndexIncremental(t *testing.T) {
	in := testInput()
	var svcs []*v1.Service
	var slices []*discovery.EndpointSlice
	for i := 0; i < 50; i++ {
		name := fmt.Sprintf("svc-%d", i)
		svcs = append(svcs, clusterIPService(name, fmt.Sprintf("10.96.1.%d", i)))
		slices = append(slices, slice(name, "10.244.1.1", "10.244.1.2"))
	}
	x, errs := Build(in, svcs, slices)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	full := x.State()

	// one endpoint added to svc-7: the touched scope is that Service's objects only
	touched := NewTouched()
	x.Replace("default/svc-7", ForService(in, svcs[7], []*discovery.EndpointSlice{slice("svc-7", "10.244.1.1", "10.244.1.2", "10.244.1.3")}), touched)
	if len(touched.Services) != 1 || len(touched.Addresses) != 1 {
		t.Fatalf("touched %d services and %d addresses, want 1 and 1", len(touched.Services), len(touched.Addresses))
	}
	part := x.Partial(touched)
	k := state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr("10.96.1.7"), Port: 80}
	if n := len(part.Services[k].RealServers); n != 3 {
		t.Fatalf("partial state has %d real servers for svc-7, want 3", n)
	}
	if n := len(x.State().Services); n != len(full.Services) {
		t.Fatalf("index holds %d services after the change, want %d", n, len(full.Services))
	}

	// deleting the Service leaves nothing of it
	touched = NewTouched()
	x.Replace("default/svc-7", nil, touched)
	part = x.Partial(touched)
	if len(part.Services) != 0 || len(part.Addresses) != 0 {
		t.Fatalf("deleted Service still wanted: %d services, %d addresses", len(part.Services), len(part.Addresses))
	}
	for m := range touched.Members {
		if _, ok := part.Sets[m.Set].Entries[m.Entry]; ok {
			t.Errorf("deleted Service's member %s %s still wanted", m.Set, m.Entry.Format(part.Sets[m.Set].Type))
		}
	}
}

func TestIndexSharedObjects(t *testing.T) {
	in := testInput()
	// two Services share an external IP on different ports: the address stays
	// bound until both are gone
	a := clusterIPService("a", "10.96.0.1", "203.0.113.5")
	b := clusterIPService("b", "10.96.0.2", "203.0.113.5")
	b.Spec.Ports[0].Port = 81
	x, _ := Build(in, []*v1.Service{a, b}, nil)
	ext := netip.MustParseAddr("203.0.113.5")
	touched := NewTouched()
	x.Replace("default/a", nil, touched)
	if _, ok := x.Partial(touched).Addresses[ext]; !ok {
		t.Fatal("shared external IP unbound while Service b still uses it")
	}
	x.Replace("default/b", nil, touched)
	if _, ok := x.Partial(touched).Addresses[ext]; ok {
		t.Fatal("external IP still bound after both Services are gone")
	}
}

func TestIndexConflict(t *testing.T) {
	in := testInput()
	// two Services claim the same external IP and port: the first by name keeps it
	a := clusterIPService("a", "10.96.0.1", "203.0.113.5")
	z := clusterIPService("z", "10.96.0.2", "203.0.113.5")
	z.Spec.SessionAffinity = v1.ServiceAffinityClientIP
	x, errs := Build(in, []*v1.Service{z, a}, nil)
	if len(errs) != 1 {
		t.Fatalf("want one conflict error, got %v", errs)
	}
	k := state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr("203.0.113.5"), Port: 80}
	if got := x.State().Services[k].Origin.Service; got != "default/a" {
		t.Fatalf("conflicting virtual server owned by %s, want default/a", got)
	}
	x.Replace("default/a", nil, NewTouched())
	if got := x.State().Services[k].Origin.Service; got != "default/z" {
		t.Fatalf("after a is gone the virtual server belongs to %s, want default/z", got)
	}
}
