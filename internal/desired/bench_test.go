package desired

import (
	"net/netip"
	"testing"

	discovery "k8s.io/api/discovery/v1"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/workload"
)

// The compute stage at the benchmark's largest size (docs/benchmarks.md):
// 10,000 Services x 10 endpoints, the VM benchmark's mix of kinds, a node
// with two addresses.
const benchServices = 10000

func benchInput() *Input {
	node := Node{Name: workload.NodeName, Addresses: []netip.Addr{netip.MustParseAddr("10.10.0.1"), netip.MustParseAddr("192.168.0.1")}}
	return NewInput(config.Default(), node)
}

func benchIndex(b *testing.B) *Index {
	svcs, slices := workload.Objects(benchServices)
	x, errs := Build(benchInput(), svcs, slices)
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	return x
}

// BenchmarkBuild computes the whole desired state: a cold start or a
// change of the node or config.
func BenchmarkBuild(b *testing.B) {
	in := benchInput()
	svcs, slices := workload.Objects(benchServices)
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := Build(in, svcs, slices); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}

// BenchmarkForService computes one Service's fragment: what a change costs.
func BenchmarkForService(b *testing.B) {
	in := benchInput()
	s := workload.ServiceSpec(benchServices / 2)
	svc, slices := s.Service(), []*discovery.EndpointSlice{s.Slice()}
	b.ReportAllocs()
	for b.Loop() {
		ForService(in, svc, slices)
	}
}

// BenchmarkIndexReplace replaces one Service's fragment in an index of
// 10,000 and materializes the touched objects: the compute part of a
// partial sync.
func BenchmarkIndexReplace(b *testing.B) {
	in := benchInput()
	x := benchIndex(b)
	s := workload.ServiceSpec(benchServices / 2)
	with := s
	with.Endpoints = append(append([]netip.Addr(nil), s.Endpoints...), workload.ExtraEndpoint(s.Index))
	versions := [2][]*discovery.EndpointSlice{{s.Slice()}, {with.Slice()}}
	svc := s.Service()
	key := ServiceKey(svc.Namespace, svc.Name)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		t := NewTouched()
		x.Replace(key, ForService(in, svc, versions[i%2]), t)
		x.Partial(t)
		i++
	}
}

// BenchmarkIndexState materializes the whole desired state of 10,000
// Services: the compute part of a full sync.
func BenchmarkIndexState(b *testing.B) {
	x := benchIndex(b)
	b.ReportAllocs()
	for b.Loop() {
		x.State()
	}
}
