// Package workload generates the benchmark's cluster: N Services, each with
// one EndpointSlice of ready endpoints on other nodes, as API objects or as
// manifest YAML. The VM benchmark (e2e/bench) and the host-side Go
// benchmarks of compute and plan use the same objects.
package workload

import (
	"fmt"
	"net/netip"
	"strings"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// The generated cluster: N Services in Namespace, each with one
// EndpointSlice of EndpointsPer ready endpoints on other nodes. A Service is,
// by its index modulo 10:
//
//	0-5  ClusterIP, TCP 80 -> 8080
//	6, 7 NodePort, TCP 80 -> 8080, node port 30000 + a counter
//	8    ClusterIP, UDP 53 -> 5353
//	9    ClusterIP, TCP 80 -> 8080, sessionAffinity ClientIP
const (
	// Namespace holds every generated object.
	Namespace = "bench"
	// NodeName is the node under test; endpoints are on node-2..node-4.
	NodeName = "node-1"
	// EndpointsPer is the number of endpoints of each Service.
	EndpointsPer = 10
	// ExtraBase is the first index of Services added by change tests.
	ExtraBase = 60000
)

// Kind is what a Service is, from its index.
type Kind int

// The kinds of generated Services.
const (
	ClusterIP Kind = iota
	NodePort
	UDP
	Affinity
)

// KindOf returns the kind of Service i.
func KindOf(i int) Kind {
	switch i % 10 {
	case 6, 7:
		return NodePort
	case 8:
		return UDP
	case 9:
		return Affinity
	}
	return ClusterIP
}

// Spec is one generated Service with its endpoints.
type Spec struct {
	Index     int
	Kind      Kind
	ClusterIP netip.Addr
	NodePort  int32
	Endpoints []netip.Addr
}

// addrAt returns base + n as an IPv4 address.
func addrAt(base string, n int) netip.Addr {
	b := netip.MustParseAddr(base).As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// ServiceSpec returns Service i: cluster IPs from 10.96.0.16 (the API
// server keeps the first ones), endpoints from 10.128.0.0, 16 per Service,
// node ports as nodePort says.
func ServiceSpec(i int) Spec {
	s := Spec{Index: i, Kind: KindOf(i), ClusterIP: addrAt("10.96.0.16", i)}
	if s.Kind == NodePort {
		s.NodePort = nodePort((i/10)*2 + i%10 - 6)
	}
	for j := range EndpointsPer {
		s.Endpoints = append(s.Endpoints, addrAt("10.128.0.0", i*16+j+1))
	}
	return s
}

// defaultNodePorts is the size of kube-apiserver's default node port range,
// 30000-32767: two Services in ten use one, so they last to 13,840 Services.
const defaultNodePorts = 32768 - 30000

// nodePort returns the k-th node port: up from 30000 within kube-apiserver's
// default range, then down from 29999, so that 30,000 Services keep the mix
// of kinds with unique ports below the kernel's ephemeral ports (32768 and
// up, where a node port would catch the answers to the node's own
// connections). Only the standalone runs go past the default range; the API
// server runs stay within it.
func nodePort(k int) int32 {
	if k < defaultNodePorts {
		return int32(30000 + k)
	}
	return int32(30000 - 1 - (k - defaultNodePorts))
}

// ExtraEndpoint is the endpoint change tests add to Service i.
func ExtraEndpoint(i int) netip.Addr { return addrAt("10.128.0.0", i*16+EndpointsPer+1) }

// Name is the Service's name; its slice is Name()+"-1".
func (s Spec) Name() string { return fmt.Sprintf("svc-%05d", s.Index) }

func (s Spec) port() (proto v1.Protocol, port, target int32) {
	if s.Kind == UDP {
		return v1.ProtocolUDP, 53, 5353
	}
	return v1.ProtocolTCP, 80, 8080
}

// Service returns the Service object.
func (s Spec) Service() *v1.Service {
	proto, port, target := s.port()
	svc := &v1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: s.Name(), Namespace: Namespace},
		Spec: v1.ServiceSpec{
			Type:       v1.ServiceTypeClusterIP,
			ClusterIP:  s.ClusterIP.String(),
			ClusterIPs: []string{s.ClusterIP.String()},
			Ports:      []v1.ServicePort{{Name: "p", Protocol: proto, Port: port, TargetPort: intstr.FromInt32(target)}},
		},
	}
	switch s.Kind {
	case NodePort:
		svc.Spec.Type = v1.ServiceTypeNodePort
		svc.Spec.Ports[0].NodePort = s.NodePort
	case Affinity:
		svc.Spec.SessionAffinity = v1.ServiceAffinityClientIP
	}
	return svc
}

// Slice returns the EndpointSlice object.
func (s Spec) Slice() *discovery.EndpointSlice {
	proto, _, target := s.port()
	es := &discovery.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{Name: s.Name() + "-1", Namespace: Namespace, Labels: map[string]string{
			discovery.LabelServiceName: s.Name(), discovery.LabelManagedBy: "ipvs-proxy-bench"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("p"), Protocol: &proto, Port: &target}},
	}
	for j, a := range s.Endpoints {
		es.Endpoints = append(es.Endpoints, discovery.Endpoint{
			Addresses:  []string{a.String()},
			Conditions: discovery.EndpointConditions{Ready: ptr.To(true)},
			NodeName:   ptr.To(fmt.Sprintf("node-%d", 2+j%3)),
		})
	}
	return es
}

// YAML renders the Service and its slice as manifest documents. Written by
// hand: marshalling 20,000 objects through sigs.k8s.io/yaml takes long
// under emulation.
func (s Spec) YAML() string {
	proto, port, target := s.port()
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: %s}\nspec:\n", s.Name(), Namespace)
	switch s.Kind {
	case NodePort:
		b.WriteString("  type: NodePort\n")
	case Affinity:
		b.WriteString("  sessionAffinity: ClientIP\n")
	}
	fmt.Fprintf(&b, "  clusterIP: %s\n  ports:\n  - {name: p, protocol: %s, port: %d, targetPort: %d", s.ClusterIP, proto, port, target)
	if s.Kind == NodePort {
		fmt.Fprintf(&b, ", nodePort: %d", s.NodePort)
	}
	b.WriteString("}\n---\n")
	fmt.Fprintf(&b, "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: %s-1\n  namespace: %s\n", s.Name(), Namespace)
	fmt.Fprintf(&b, "  labels: {kubernetes.io/service-name: %s}\naddressType: IPv4\n", s.Name())
	fmt.Fprintf(&b, "ports: [{name: p, protocol: %s, port: %d}]\nendpoints:\n", proto, target)
	for j, a := range s.Endpoints {
		fmt.Fprintf(&b, "- {addresses: [%s], conditions: {ready: true}, nodeName: node-%d}\n", a, 2+j%3)
	}
	b.WriteString("---\n")
	return b.String()
}

// JSON renders the Service and its slice as two manifest documents in JSON
// form, each followed by a --- line. Written by hand, like YAML: the
// manifest reader decodes JSON documents without its YAML parser, three
// times faster, which matters at 10,000 Services under emulation.
func (s Spec) JSON() string {
	proto, port, target := s.port()
	var b strings.Builder
	fmt.Fprintf(&b, `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": %q, "namespace": %q}, "spec": {`, s.Name(), Namespace)
	switch s.Kind {
	case NodePort:
		b.WriteString(`"type": "NodePort", `)
	case Affinity:
		b.WriteString(`"sessionAffinity": "ClientIP", `)
	}
	fmt.Fprintf(&b, `"clusterIP": %q, "ports": [{"name": "p", "protocol": %q, "port": %d, "targetPort": %d`, s.ClusterIP.String(), proto, port, target)
	if s.Kind == NodePort {
		fmt.Fprintf(&b, `, "nodePort": %d`, s.NodePort)
	}
	b.WriteString("}]}}\n---\n")
	fmt.Fprintf(&b, `{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "%s-1", "namespace": %q, `, s.Name(), Namespace)
	fmt.Fprintf(&b, `"labels": {"kubernetes.io/service-name": %q}}, "addressType": "IPv4", `, s.Name())
	fmt.Fprintf(&b, `"ports": [{"name": "p", "protocol": %q, "port": %d}], "endpoints": [`, proto, target)
	for j, a := range s.Endpoints {
		if j > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `{"addresses": [%q], "conditions": {"ready": true}, "nodeName": "node-%d"}`, a.String(), 2+j%3)
	}
	b.WriteString("]}\n---\n")
	return b.String()
}

// Objects returns Services 0..n-1 and their slices.
func Objects(n int) ([]*v1.Service, []*discovery.EndpointSlice) {
	svcs := make([]*v1.Service, 0, n)
	slices := make([]*discovery.EndpointSlice, 0, n)
	for i := range n {
		s := ServiceSpec(i)
		svcs = append(svcs, s.Service())
		slices = append(slices, s.Slice())
	}
	return svcs, slices
}
