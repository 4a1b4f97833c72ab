package desired

import (
	"fmt"
	"math/rand"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

func aged(svc *v1.Service, ns string, created time.Time) *v1.Service {
	svc.Namespace = ns
	svc.CreationTimestamp = metav1.NewTime(created)
	return svc
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// The CVE-2020-8554 class: a tenant's externalIP equal to the API server's
// ClusterIP, in a namespace that sorts before "default", used to win
// 10.96.0.1:443. A ClusterIP comes before any externalIP, on every port, and
// the loser's set members (which would masquerade the winner's traffic) and
// address go with it.
func TestExternalIPNeverTakesAClusterIP(t *testing.T) {
	in := testInput()
	api := aged(clusterIPService("kubernetes", "10.96.0.1"), "default", epoch.Add(time.Hour))
	api.Spec.Ports[0].Port = 443
	evil := aged(clusterIPService("evil", "10.96.0.66", "10.96.0.1"), "aaa", epoch) // older, sorts first
	evil.Spec.Ports = append(evil.Spec.Ports, v1.ServicePort{Name: "https", Port: 443, Protocol: v1.ProtocolTCP})
	x, errs := Build(in, []*v1.Service{evil, api}, nil)
	s := x.State()
	k443 := state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr("10.96.0.1"), Port: 443}
	if got := s.Services[k443].Origin; got.Service != "default/kubernetes" || got.Kind != state.KindClusterIP {
		t.Fatalf("10.96.0.1:443 belongs to %+v", got)
	}
	if _, ok := s.Services[state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr("10.96.0.1"), Port: 80}]; ok {
		t.Error("the externalIP equal to a ClusterIP got a virtual server on another port")
	}
	if n := len(s.Sets[SetExternalIP].Entries); n != 0 {
		t.Errorf("the refused externalIP left %d KUBE-EXTERNAL-IP members (they masquerade the ClusterIP's traffic)", n)
	}
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "Service aaa/evil: externalIP 10.96.0.1 is the ClusterIP of Service default/kubernetes") {
		t.Errorf("errors: %v", errs)
	}
}

// Between two Services in the same role, the older wins, whatever their
// names and the order they arrive in.
func TestOlderServiceWins(t *testing.T) {
	in := testInput()
	old := aged(clusterIPService("zzz", "10.96.0.2", "203.0.113.5"), "zzz", epoch)
	young := aged(clusterIPService("aaa", "10.96.0.3", "203.0.113.5"), "aaa", epoch.Add(time.Minute))
	for _, order := range [][]*v1.Service{{old, young}, {young, old}} {
		x, errs := Build(in, order, nil)
		k := state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr("203.0.113.5"), Port: 80}
		if got := x.State().Services[k].Origin.Service; got != "zzz/zzz" {
			t.Errorf("203.0.113.5:80 went to %s, want the older zzz/zzz", got)
		}
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), "which keeps it (it is older)") {
			t.Errorf("errors: %v", errs)
		}
	}
}

// randomService draws a Service from small pools, so that they collide.
func randomService(r *rand.Rand, i int) *v1.Service {
	ip := func(n int) string { return fmt.Sprintf("10.96.0.%d", 1+r.Intn(n)) }
	svc := clusterIPService(fmt.Sprintf("s%d", i), ip(6))
	svc.Namespace = []string{"a", "b", "default"}[r.Intn(3)]
	svc.CreationTimestamp = metav1.NewTime(epoch.Add(time.Duration(r.Intn(3)) * time.Hour))
	svc.Spec.Ports[0].Port = int32(80 + r.Intn(2))
	for range r.Intn(3) {
		svc.Spec.ExternalIPs = append(svc.Spec.ExternalIPs, ip(8))
	}
	switch r.Intn(3) {
	case 1:
		svc.Spec.Type = v1.ServiceTypeNodePort
		svc.Spec.Ports[0].NodePort = int32(30000 + r.Intn(2))
	case 2:
		svc.Spec.Type = v1.ServiceTypeLoadBalancer
		svc.Spec.Ports[0].NodePort = int32(30000 + r.Intn(2))
		svc.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: ip(8)}}
		if r.Intn(2) == 0 {
			svc.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/24"}
		}
	}
	return svc
}

// Whatever the order of changes, the incremental index holds what a
// fresh Build of the same Services holds, with the same errors.
func TestIndexPrecedenceMatchesABuildFromScratch(t *testing.T) {
	in := testInput()
	r := rand.New(rand.NewSource(7))
	x := NewIndex(Base(in))
	believed := x.State() // kept up to date from Partial of the touched objects only, as partial syncs do
	current := map[string]*v1.Service{}
	for step := range 1000 {
		i := r.Intn(12)
		key := ServiceKey("", fmt.Sprintf("s%d", i))
		for k := range current {
			if strings.HasSuffix(k, fmt.Sprintf("/s%d", i)) {
				key = k
			}
		}
		touched := NewTouched()
		if _, ok := current[key]; ok && r.Intn(3) == 0 {
			x.Replace(key, nil, touched)
			delete(current, key)
		} else {
			if _, ok := current[key]; ok {
				x.Replace(key, nil, touched)
				delete(current, key)
			}
			svc := randomService(r, i)
			key = ServiceKey(svc.Namespace, svc.Name)
			current[key] = svc
			x.Replace(key, ForService(in, svc, nil), touched)
		}
		var list []*v1.Service
		for _, s := range current {
			list = append(list, s)
		}
		fresh, _ := Build(in, list, nil)
		if got, want := stateText(x.State()), stateText(fresh.State()); got != want {
			t.Fatalf("step %d: incremental index differs from a fresh build:\n%s\nwant:\n%s", step, got, want)
		}
		applyPartial(believed, x.Partial(touched), touched)
		if got, want := stateText(believed), stateText(x.State()); got != want {
			t.Fatalf("step %d: the touched objects miss a change:\n%s\nwant:\n%s", step, got, want)
		}
		for k := range current {
			if got, want := errText(x.Errors(k)), errText(fresh.Errors(k)); got != want {
				t.Fatalf("step %d: errors of %s: %s, want %s", step, k, got, want)
			}
		}
	}
}

func stateText(s *state.State) string {
	var b strings.Builder
	_ = s.WriteIPVS(&b)
	_ = s.WriteSetMembers(&b)
	_ = s.WriteAddresses(&b)
	for k, svc := range s.Services {
		fmt.Fprintf(&b, "%s %s\n", k, svc.Origin.Service)
	}
	lines := strings.Split(b.String(), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func errText(errs []error) string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// applyPartial updates s with the desired value of every touched object.
func applyPartial(s, part *state.State, t *Touched) {
	for k := range t.Services {
		if w, ok := part.Services[k]; ok {
			s.Services[k] = w
		} else {
			delete(s.Services, k)
		}
	}
	for a := range t.Addresses {
		if _, ok := part.Addresses[a]; ok {
			s.Addresses[a] = struct{}{}
		} else {
			delete(s.Addresses, a)
		}
	}
	for m := range t.Members {
		set := s.Sets[m.Set]
		if set == nil {
			continue
		}
		if _, ok := part.Sets[m.Set].Entries[m.Entry]; ok {
			set.Entries[m.Entry] = struct{}{}
		} else {
			delete(set.Entries, m.Entry)
		}
	}
}

// An in-cluster mark (externalTrafficPolicy Local) goes with the virtual
// server it serves: a tenant's externalIP that is refused for being another
// Service's ClusterIP leaves no KUBE-EXTERNAL-LOCAL-MARK member, which would
// send the ClusterIP's traffic to the tenant's firewall-mark virtual server.
func TestRefusedExternalIPLeavesNoMark(t *testing.T) {
	in := testInput()
	api := aged(clusterIPService("kubernetes", "10.96.0.1"), "default", epoch.Add(time.Hour))
	api.Spec.Ports[0].Port = 443
	evil := aged(clusterIPService("evil", "10.96.0.66", "10.96.0.1", "203.0.113.9"), "aaa", epoch)
	evil.Spec.Ports[0].Port = 443
	evil.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	x, _ := Build(in, []*v1.Service{evil, api}, []*discovery.EndpointSlice{sliceIn("aaa", "evil", "10.244.1.1")})
	marks := x.State().Sets[SetExternalLocalMarks].Entries
	for e := range marks {
		if e.Addr == netip.MustParseAddr("10.96.0.1") {
			t.Errorf("KUBE-EXTERNAL-LOCAL-MARK holds %s,%s:%d (mark %#x): the refused externalIP would take the ClusterIP's traffic", e.Addr, e.Proto, e.Port, e.Mark)
		}
	}
	found := false
	for e := range marks {
		found = found || e.Addr == netip.MustParseAddr("203.0.113.9")
	}
	if !found {
		t.Errorf("the tenant's own externalIP 203.0.113.9 has no mark: %v", marks)
	}
}

func sliceIn(ns, service string, ips ...string) *discovery.EndpointSlice {
	es := slice(service, ips...)
	es.Namespace = ns
	return es
}
