package workload

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/manifest"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

func input() *desired.Input {
	node := desired.Node{Name: NodeName, Addresses: []netip.Addr{netip.MustParseAddr("10.10.0.1"), netip.MustParseAddr("192.168.0.1")}}
	return desired.NewInput(config.Default(), node)
}

func ipvsText(t *testing.T, s *state.State) string {
	var b strings.Builder
	if err := s.WriteIPVS(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The manifests and the API objects describe the same cluster, and it has
// the intended shape.
func TestYAMLAndObjectsAgree(t *testing.T) {
	const n = 40
	dir := t.TempDir()
	var y, j strings.Builder
	for i := range n {
		y.WriteString(ServiceSpec(i).YAML())
		j.WriteString(ServiceSpec(i).JSON())
	}
	read := func(text string) *desired.Index {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "all.yaml"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		objs, err := manifest.ReadDir(dir)
		if err != nil || len(objs.Errors) > 0 || len(objs.Warnings) > 0 {
			t.Fatalf("ReadDir: %v %v %v", err, objs.Errors, objs.Warnings)
		}
		x, errs := desired.Build(input(), objs.Services, objs.EndpointSlices)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		return x
	}
	fromYAML, fromJSON := read(y.String()), read(j.String())
	if ipvsText(t, fromYAML.State()) != ipvsText(t, fromJSON.State()) {
		t.Errorf("YAML and JSON manifests differ")
	}
	svcs, slices := Objects(n)
	fromObjects, errs := desired.Build(input(), svcs, slices)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	a, o := fromYAML.State(), fromObjects.State()
	if ipvsText(t, a) != ipvsText(t, o) {
		t.Errorf("YAML and objects differ:\n%s\n---\n%s", ipvsText(t, a), ipvsText(t, o))
	}
	// 24 ClusterIP-like, 8 NodePort (on 2 node addresses too), 4 UDP, 4 affinity.
	if want := n + 8*2; len(a.Services) != want {
		t.Errorf("%d virtual servers, want %d", len(a.Services), want)
	}
	for k, s := range a.Services {
		if len(s.RealServers) != EndpointsPer {
			t.Errorf("%s has %d real servers", k, len(s.RealServers))
		}
	}
	if len(a.Addresses) != n {
		t.Errorf("%d addresses, want %d", len(a.Addresses), n)
	}
	text := ipvsText(t, a)
	for _, want := range []string{"-u 10.96.0.24:53", "-p 10800", "-t 10.10.0.1:30000", "-t 192.168.0.1:30001"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in:\n%s", want, text)
		}
	}
}

// Indexes stay apart: cluster IPs, node ports and endpoints are unique at
// 30,000 Services and the change tests' extra ones; node ports stay below
// the ephemeral range, and within kube-apiserver's default range up to
// 13,840 Services.
func TestUnique(t *testing.T) {
	ips, ports, eps := map[netip.Addr]bool{}, map[int32]bool{}, map[netip.Addr]bool{}
	indexes := make([]int, 0, 30100)
	for i := range 30000 {
		indexes = append(indexes, i)
	}
	for k := range 100 {
		indexes = append(indexes, ExtraBase+k*10)
	}
	for _, i := range indexes {
		s := ServiceSpec(i)
		if ips[s.ClusterIP] || !netip.MustParsePrefix("10.96.0.0/16").Contains(s.ClusterIP) {
			t.Fatalf("cluster IP %s twice or outside 10.96.0.0/16", s.ClusterIP)
		}
		ips[s.ClusterIP] = true
		if s.Kind == NodePort {
			if ports[s.NodePort] || s.NodePort < 1024 || s.NodePort > 32767 || (i < 13840 && s.NodePort < 30000) {
				t.Fatalf("node port %d of Service %d reused or out of range", s.NodePort, i)
			}
			ports[s.NodePort] = true
		}
		for _, e := range append(s.Endpoints, ExtraEndpoint(i)) {
			if eps[e] {
				t.Fatalf("endpoint %s twice", e)
			}
			eps[e] = true
		}
	}
}
