package proxier

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	v1 "k8s.io/api/core/v1"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/metrics"
)

// TestNoLocalEndpointsMetric: kubeproxy_sync_proxy_rules_no_local_endpoints_total
// counts the Services (not ports) with a Local traffic policy that have
// endpoints elsewhere but none on this node, by policy and family.
func TestNoLocalEndpointsMetric(t *testing.T) {
	fk := fake.New(nodeIP)
	m := metrics.New()
	cfg := config.Default()
	syncs := make(chan SyncStats, 10)
	p := New(Config{Kernel: fk.Interfaces(), Config: cfg, Metrics: m, OnSync: func(s SyncStats) { syncs <- s }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	local := v1.ServiceInternalTrafficPolicyLocal
	internal := service("internal", "10.96.0.1", 80)
	internal.Spec.InternalTrafficPolicy = &local
	internal.Spec.Ports = append(internal.Spec.Ports, v1.ServicePort{Name: "other", Port: 81, Protocol: v1.ProtocolTCP})
	external := service("external", "10.96.0.2", 80)
	external.Spec.Type = v1.ServiceTypeNodePort
	external.Spec.Ports[0].NodePort = 30080
	external.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	clusterOnly := service("cluster", "10.96.0.3", 80)
	for _, svc := range []*v1.Service{internal, external, clusterOnly} {
		p.UpsertService(svc)
		p.UpsertSlice(endpoints(svc.Name, "10.244.1.1")) // on node2: none local
	}
	p.SetNode(NodeInfo{Name: "node1"})
	p.SetSynced()
	select {
	case <-syncs:
	case <-time.After(5 * time.Second):
		t.Fatal("no sync")
	}
	for _, c := range []struct {
		policy string
		want   float64
	}{{"internal", 1}, {"external", 1}} {
		if got := testutil.ToFloat64(m.NoLocalEndpoints.WithLabelValues(c.policy, metrics.IPv4)); got != c.want {
			t.Errorf("no_local_endpoints_total{traffic_policy=%q}: %v, want %v", c.policy, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.Registry, "kubeproxy_sync_proxy_rules_last_timestamp_seconds"); n != 1 {
		t.Errorf("%d last-sync series, want one for IPv4 (the node has only IPv4)", n)
	}
}
