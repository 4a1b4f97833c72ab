package proxier

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// etpLocal is a LoadBalancer Service with externalTrafficPolicy Local.
func etpLocal(name, ip, lbIP string, nodePort int32) *v1.Service {
	svc := service(name, ip, 80)
	svc.Spec.Type = v1.ServiceTypeLoadBalancer
	svc.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	svc.Spec.Ports[0].NodePort = nodePort
	svc.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: lbIP}}
	return svc
}

// TestRestartKeepsInClusterMarks: a restarted daemon finds the marks of its
// in-cluster firewall-mark virtual servers in the kernel and keeps them,
// whatever marks it would have chosen itself: the first full sync writes
// nothing, and no in-cluster connection is cut.
func TestRestartKeepsInClusterMarks(t *testing.T) {
	fk := fake.New(nodeIP)
	feed := func(h *harness) {
		h.p.UpsertService(etpLocal("web", "10.96.0.1", "198.51.100.1", 30001))
		h.p.UpsertSlice(endpoints("web", "10.244.1.1", "10.244.1.2"))
		h.p.SetNode(NodeInfo{Name: "node1"})
		h.p.SetSynced()
	}
	h := start(t, fk, fk.Interfaces(), nil)
	feed(h)
	h.next("full")
	h.stop()

	// The kernel holds the virtual server under another mark than the one
	// the daemon picks (marks are kept once given, so an older daemon may
	// have given another): move it to mark 7 << 0.
	ipvs, _ := fk.IPVS.Dump()
	var old *state.Service
	for k, s := range ipvs {
		if k.FWMark != 0 {
			old = s
		}
	}
	if old == nil {
		t.Fatalf("no firewall-mark virtual server after the first run:\n%s", fk.IPVS.Save())
	}
	moved := old.VirtualServer
	moved.Key = state.FWMarkKey(7, state.IPv4)
	ops := []kernel.IPVSOp{{Cmd: kernel.DelService, VS: old.VirtualServer}, {Cmd: kernel.AddService, VS: moved}}
	for _, rs := range old.SortedRealServers() {
		ops = append(ops, kernel.IPVSOp{Cmd: kernel.AddDest, VS: moved, RS: rs})
	}
	for _, err := range fk.IPVS.Exec(ops) {
		if err != nil {
			t.Fatal(err)
		}
	}
	sets, _ := fk.IPSet.List()
	set := sets[desired.SetExternalLocalMarks]
	var setOps []kernel.SetOp
	for e := range set.Entries {
		e.Mark = 7
		setOps = append(setOps, kernel.SetOp{Add: true, Replace: true, Set: set.SetSpec, Entry: e})
	}
	for _, err := range fk.IPSet.Exec(setOps) {
		if err != nil {
			t.Fatal(err)
		}
	}
	before, saved := fk.Writes(), fk.IPVS.Save()

	h2 := start(t, fk, fk.Interfaces(), nil)
	feed(h2)
	if s := h2.next("full"); s.Ops != 0 || fk.Writes() != before {
		t.Errorf("restart planned %d ops (%v) on a kernel that holds every object under other marks", s.Ops, s.Counts)
	}
	if got := fk.IPVS.Save(); got != saved || !strings.Contains(got, "-A -f 7 -s rr") {
		t.Errorf("kernel after the restart:\n%s\nwant it unchanged:\n%s", got, saved)
	}
}
