package e2e

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/link"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// TestKernelNamespaced programs IPVS, kube-ipvs0 and an ipset in another
// network namespace (Config.NetNSPath) and checks that the root namespace is
// untouched.
func TestKernelNamespaced(t *testing.T) {
	framework.ResetKernel(t)
	ns := framework.NewClientNS(t, "kns", "10.250.0.9")
	path := "/run/netns/kns"
	if _, err := os.Stat(path); err != nil {
		path = "/var/run/netns/kns"
	}

	v := openIPVS(t, ipvs.Config{NetNSPath: path})
	vs := state.VirtualServer{Key: state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr("10.96.0.1"), Port: 80}, Scheduler: "rr"}
	requireNoErrors(t, "add", nil, v.Exec([]kernel.IPVSOp{{Cmd: kernel.AddService, VS: vs}}))
	if out := ns.Run(t, framework.IPVSAdmBin, "-Ln"); !strings.Contains(out, "10.96.0.1:80") {
		t.Errorf("ipvsadm -Ln in the namespace:\n%s", out)
	}
	if out := framework.IPVSADM(t, "-Ln"); strings.Contains(out, "10.96.0.1:80") {
		t.Errorf("the service leaked into the root namespace:\n%s", out)
	}

	l := link.New(link.Config{NetNSPath: path})
	if err := l.Open(); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.EnsureLink(); err != nil {
		t.Fatal(err)
	}
	if errs := l.Exec([]kernel.AddrOp{{Add: true, Addr: vs.Key.Addr}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if out := ns.Run(t, framework.IPBin, "-o", "addr", "show", "dev", "kube-ipvs0"); !strings.Contains(out, "10.96.0.1/32") {
		t.Errorf("kube-ipvs0 in the namespace:\n%s", out)
	}
	if _, err := framework.Output(framework.IPBin, "link", "show", "dev", "kube-ipvs0"); err == nil {
		t.Error("kube-ipvs0 leaked into the root namespace")
	}
	node, err := l.NodeAddresses()
	if err != nil || len(node) != 2 || node[0].String() != "10.250.0.9" || node[1].String() != "127.0.0.1" {
		t.Errorf("NodeAddresses in the namespace = %v, %v; want [10.250.0.9 127.0.0.1]", node, err)
	}

	s := ipset.New(ipset.Config{NetNSPath: path})
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Create(state.SetSpec{Name: "KUBE-NS-TEST", Type: state.HashIP, Family: state.IPv4}); err != nil {
		t.Fatal(err)
	}
	if out := ns.Run(t, framework.IPSetBin, "list", "-n"); !strings.Contains(out, "KUBE-NS-TEST") {
		t.Errorf("ipset list -n in the namespace: %s", out)
	}
	if out := framework.Run(t, framework.IPSetBin, "list", "-n"); strings.Contains(out, "KUBE-NS-TEST") {
		t.Error("the set leaked into the root namespace")
	}
}
