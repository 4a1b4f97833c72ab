package plan

import (
	"net/netip"
	"testing"

	discovery "k8s.io/api/discovery/v1"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/workload"
)

// The plan stage at the benchmark's largest size (docs/benchmarks.md):
// 10,000 Services x 10 endpoints, a node with two addresses.
const benchServices = 10000

func benchIndex(b *testing.B) (*desired.Input, *desired.Index) {
	node := desired.Node{Name: workload.NodeName, Addresses: []netip.Addr{netip.MustParseAddr("10.10.0.1"), netip.MustParseAddr("192.168.0.1")}}
	in := desired.NewInput(config.Default(), node)
	svcs, slices := workload.Objects(benchServices)
	x, errs := desired.Build(in, svcs, slices)
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	return in, x
}

func benchOptions(scope *state.Scope) Options {
	return Options{Scope: scope, ConnsKnown: scope == nil}
}

// BenchmarkDiffColdStart plans everything against an empty kernel.
func BenchmarkDiffColdStart(b *testing.B) {
	_, x := benchIndex(b)
	want, have := x.State(), state.New()
	b.ReportAllocs()
	for b.Loop() {
		Diff(want, have, benchOptions(nil))
	}
}

// BenchmarkDiffFullIdle is the diff of a periodic full sync that finds
// nothing to do.
func BenchmarkDiffFullIdle(b *testing.B) {
	_, x := benchIndex(b)
	want, have := x.State(), x.State()
	b.ReportAllocs()
	for b.Loop() {
		if p := Diff(want, have, benchOptions(nil)); !p.Empty() {
			b.Fatalf("%d ops", len(p.Ops))
		}
	}
}

// BenchmarkDiffScoped is the diff of a partial sync after one endpoint was
// added to one of 10,000 Services: one operation.
func BenchmarkDiffScoped(b *testing.B) {
	in, x := benchIndex(b)
	have := x.State()
	s := workload.ServiceSpec(benchServices / 2)
	s.Endpoints = append(s.Endpoints, workload.ExtraEndpoint(s.Index))
	t := desired.NewTouched()
	x.Replace(desired.ServiceKey(workload.Namespace, s.Name()), desired.ForService(in, s.Service(), []*discovery.EndpointSlice{s.Slice()}), t)
	want := x.Partial(t)
	b.ReportAllocs()
	for b.Loop() {
		if p := Diff(want, have, benchOptions(t)); len(p.Ops) != 1 {
			b.Fatalf("%d ops, want 1", len(p.Ops))
		}
	}
}
