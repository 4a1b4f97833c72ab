package desired

import (
	"net/netip"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// etpService is a LoadBalancer Service with an external IP, the given
// externalTrafficPolicy, one port and NodePort.
func etpService(name, clusterIP, lbIP string, nodePort int32, policy v1.ServiceExternalTrafficPolicy) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeLoadBalancer, ClusterIP: clusterIP, ExternalIPs: []string{"203.0.113.10"},
			ExternalTrafficPolicy: policy,
			Ports:                 []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP, NodePort: nodePort}}},
		Status: v1.ServiceStatus{LoadBalancer: v1.LoadBalancerStatus{Ingress: []v1.LoadBalancerIngress{{IP: lbIP}}}},
	}
}

// localAndRemote has an endpoint on node1 and two on node2.
func localAndRemote(service string) *discovery.EndpointSlice {
	es := slice(service, "10.244.2.2", "10.244.3.2")
	es.Endpoints = append(es.Endpoints, discovery.Endpoint{Addresses: []string{"10.244.1.2"}, NodeName: ptr.To("node1")})
	return es
}

func realServerAddrs(s *state.Service) []string {
	var out []string
	for _, rs := range s.SortedRealServers() {
		out = append(out, rs.Key.String())
	}
	return out
}

// TestInClusterVirtualServer: an externalTrafficPolicy Local Service port has
// a firewall-mark virtual server with all its endpoints, and its external
// addresses (load balancer IP, external IP, node address and NodePort) carry
// that mark in KUBE-EXTERNAL-LOCAL-MARK, while the address virtual servers
// keep only this node's endpoint; a Service with policy Cluster has none.
func TestInClusterVirtualServer(t *testing.T) {
	in := testInput()
	cluster := etpService("cluster", "10.96.0.41", "198.51.100.11", 30091, v1.ServiceExternalTrafficPolicyCluster)
	cluster.Spec.ExternalIPs = []string{"203.0.113.11"}
	x, errs := Build(in, []*v1.Service{
		etpService("local", "10.96.0.40", "198.51.100.10", 30090, v1.ServiceExternalTrafficPolicyLocal), cluster,
	}, []*discovery.EndpointSlice{localAndRemote("local"), localAndRemote("cluster")})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s := x.State()
	all := []string{"10.244.1.2:8080", "10.244.2.2:8080", "10.244.3.2:8080"}
	var fwm []*state.Service
	for _, k := range s.SortedServices() {
		if k.FWMark != 0 {
			fwm = append(fwm, s.Services[k])
		}
	}
	if len(fwm) != 1 || fwm[0].Origin.Service != "default/local" || fwm[0].Origin.Kind != state.KindInCluster {
		t.Fatalf("firewall-mark virtual servers %v, want one for default/local", fwm)
	}
	mark := fwm[0].Key.FWMark
	if got := realServerAddrs(fwm[0]); !slices.Equal(got, all) {
		t.Errorf("in-cluster real servers %v, want all endpoints %v", got, all)
	}
	for _, k := range []state.VSKey{
		{Proto: state.TCP, Addr: mustAddr("198.51.100.10"), Port: 80},
		{Proto: state.TCP, Addr: mustAddr("203.0.113.10"), Port: 80},
		{Proto: state.TCP, Addr: mustAddr("10.0.0.1"), Port: 30090},
	} {
		if got := realServerAddrs(s.Services[k]); !slices.Equal(got, []string{"10.244.1.2:8080"}) {
			t.Errorf("%s real servers %v, want only the local endpoint", k, got)
		}
	}
	var members []string
	for _, e := range s.Sets[SetExternalLocalMarks].SortedEntries() {
		if e.Mark != mark || e.MarkMask != 0x3fff {
			t.Errorf("member %s: mark %#x/%#x, want %#x/0x3fff", e.Format(state.HashIPPort), e.Mark, e.MarkMask, mark)
		}
		members = append(members, e.Key().Format(state.HashIPPort))
	}
	if want := []string{"10.0.0.1,tcp:30090", "198.51.100.10,tcp:80", "203.0.113.10,tcp:80"}; !slices.Equal(members, want) {
		t.Errorf("KUBE-EXTERNAL-LOCAL-MARK members %v, want %v", members, want)
	}
}

// TestMarksStayPut: a Service port keeps its mark while it wants one: other
// Services coming and going never move it, a port that goes gives its mark
// back, and an index rebuilt for a new node keeps the marks.
func TestMarksStayPut(t *testing.T) {
	in := testInput()
	x := NewIndex(Base(in))
	add := func(name, ip string, nodePort int32) uint32 {
		t.Helper()
		x.Replace("default/"+name, ForService(in, etpService(name, ip, ip, nodePort, v1.ServiceExternalTrafficPolicyLocal), nil), NewTouched())
		for _, s := range x.Fragment("default/" + name).Services {
			if s.Key.FWMark != 0 {
				return s.Key.FWMark
			}
		}
		t.Fatalf("%s has no firewall-mark virtual server", name)
		return 0
	}
	a := add("a", "10.96.0.1", 30001)
	b := add("b", "10.96.0.2", 30002)
	if a == b {
		t.Fatalf("a and b share mark %#x", a)
	}
	for i := 0; i < 50; i++ {
		add("other", "10.96.0.3", 30003)
		x.Replace("default/other", nil, NewTouched())
	}
	if got := add("a", "10.96.0.1", 30001); got != a {
		t.Errorf("a's mark moved from %#x to %#x", a, got)
	}
	x.Replace("default/b", nil, NewTouched())
	if _, used := x.marks.byMark[b]; used {
		t.Errorf("b's mark %#x still taken after b is gone", b)
	}
	y := NewIndex(Base(in))
	y.InheritMarks(x)
	x = y
	if got := add("a", "10.96.0.1", 30001); got != a {
		t.Errorf("rebuilt index: a's mark %#x, want %#x", got, a)
	}
}

// TestAdoptMarks: a restarted daemon takes the marks the kernel holds for its
// Service ports, and keeps away from the marks of firewall-mark virtual
// servers that are not its own.
func TestAdoptMarks(t *testing.T) {
	in := testInput()
	fresh := func() (*Index, uint32) {
		x := NewIndex(Base(in))
		x.Replace("default/a", ForService(in, etpService("a", "10.96.0.1", "198.51.100.1", 30001, v1.ServiceExternalTrafficPolicyLocal), nil), NewTouched())
		return x, x.State().Sets[SetExternalLocalMarks].SortedEntries()[0].Mark
	}
	x, first := fresh()
	kernel := x.State()
	// the kernel holds a's members with mark 7, and a foreign virtual server on first's mark
	set := kernel.Sets[SetExternalLocalMarks]
	for e := range set.Entries {
		delete(set.Entries, e)
		e.Mark = 7
		set.Entries[e] = struct{}{}
	}
	kernel.Services[state.FWMarkKey(first, state.IPv4)] = &state.Service{VirtualServer: state.VirtualServer{Key: state.FWMarkKey(first, state.IPv4), Scheduler: "rr"}}
	x, _ = fresh()
	touched := x.AdoptMarks(kernel)
	s := x.State()
	if _, ok := s.Services[state.FWMarkKey(7, state.IPv4)]; !ok {
		t.Errorf("after adoption no firewall-mark virtual server 7: %v", s.SortedServices())
	}
	for e := range s.Sets[SetExternalLocalMarks].Entries {
		if e.Mark != 7 {
			t.Errorf("member %s keeps mark %#x, want 7", e.Format(state.HashIPPort), e.Mark)
		}
	}
	if _, ok := touched.Services[state.FWMarkKey(7, state.IPv4)]; !ok {
		t.Errorf("touched %v lacks the adopted virtual server", touched.Services)
	}
	// a new Service port never gets the foreign mark
	x.Replace("default/a", nil, NewTouched())
	x.Replace("default/b", ForService(in, etpService("a", "10.96.0.1", "198.51.100.1", 30001, v1.ServiceExternalTrafficPolicyLocal), nil), NewTouched())
	if got := x.State().Sets[SetExternalLocalMarks].SortedEntries()[0].Mark; got == first {
		t.Errorf("new port got mark %#x of a virtual server that is not ours", got)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestMarkMemberConflict: two externalTrafficPolicy Local Services on one
// load balancer IP and port want two marks for one kernel member: the one
// that keeps the virtual server keeps the member, and when it goes the other
// one's member takes its place (touched, so an incremental sync writes it).
func TestMarkMemberConflict(t *testing.T) {
	in := testInput()
	a := etpService("a", "10.96.0.1", "198.51.100.1", 30001, v1.ServiceExternalTrafficPolicyLocal)
	b := etpService("b", "10.96.0.2", "198.51.100.1", 30002, v1.ServiceExternalTrafficPolicyLocal)
	b.Spec.ExternalIPs = []string{"203.0.113.2"}
	x, _ := Build(in, []*v1.Service{a, b}, nil)
	key := state.SetEntry{Addr: mustAddr("198.51.100.1"), Proto: state.TCP, Port: 80}
	markOf := func(s *state.State, svc string) uint32 {
		for k, v := range s.Services {
			if k.FWMark != 0 && v.Origin.Service == svc {
				return k.FWMark
			}
		}
		return 0
	}
	holder := func(s *state.State) []uint32 {
		var out []uint32
		for e := range s.Sets[SetExternalLocalMarks].Entries {
			if e.Key() == key {
				out = append(out, e.Mark)
			}
		}
		return out
	}
	s := x.State()
	if got := holder(s); len(got) != 1 || got[0] != markOf(s, "default/a") {
		t.Errorf("members for %s: marks %v, want only default/a's %#x", key.Format(state.HashIPPort), got, markOf(s, "default/a"))
	}
	touched := NewTouched()
	x.Replace("default/a", nil, touched)
	p := x.Partial(touched)
	bMark := markOf(x.State(), "default/b")
	want := key
	want.Mark, want.MarkMask = bMark, 0x3fff
	if _, ok := p.Sets[SetExternalLocalMarks].Entries[want]; !ok {
		t.Errorf("after default/a is gone the partial state lacks default/b's member %s: %v", want.Format(state.HashIPPort), p.Sets[SetExternalLocalMarks].Entries)
	}
}
