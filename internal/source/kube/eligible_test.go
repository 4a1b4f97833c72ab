package kube

import (
	"context"
	"net/netip"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/health"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/apiserver"
)

func TestEligibility(t *testing.T) {
	now := metav1.Now()
	for _, c := range []struct {
		name string
		node v1.Node
		want bool
	}{
		{"ready", v1.Node{}, true},
		{"other taint", v1.Node{Spec: v1.NodeSpec{Taints: []v1.Taint{{Key: "node.kubernetes.io/unschedulable", Effect: v1.TaintEffectNoSchedule}}}}, true},
		{"being deleted", v1.Node{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}}, false},
		{"autoscaler taint", v1.Node{Spec: v1.NodeSpec{Taints: []v1.Taint{{Key: TaintToBeDeleted, Value: "1700000000", Effect: v1.TaintEffectNoSchedule}}}}, false},
	} {
		if got, why := Eligibility(&c.node); got != c.want || (got == (why != "")) {
			t.Errorf("%s: eligible %v (%q), want %v", c.name, got, why, c.want)
		}
	}
}

// The Node's eligibility reaches /healthz's tracker from the API server: the
// autoscaler's taint makes the node unhealthy (not eligible), removing it
// healthy again.
func TestNodeEligibilityFromTheAPIServer(t *testing.T) {
	srv := apiserver.StartForTest(t, apiserver.Options{})
	client := kubernetes.NewForConfigOrDie(srv.RESTConfig())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	node, err := client.CoreV1().Nodes().Create(ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fk := fake.New(netip.MustParseAddr("10.0.0.1"))
	tracker := health.NewTracker(time.Minute, 0, nil)
	p := proxier.New(proxier.Config{Kernel: fk.Interfaces(), Config: config.Default(), Health: tracker})
	src := NewWithClient(Config{NodeName: "node-1", NodeWait: time.Second, Health: tracker}, client)
	done := make(chan struct{}, 2)
	go func() { _ = src.Run(ctx, p); done <- struct{}{} }()
	go func() { _ = p.Run(ctx); done <- struct{}{} }()
	defer func() { cancel(); <-done; <-done }()
	wait := func(what string, ok func(health.Status) bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(tracker.Status()); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v", what, tracker.Status())
			}
		}
	}
	wait("healthy after the first sync", func(s health.Status) bool { return s.Healthy && s.NodeEligible })
	node.Spec.Taints = []v1.Taint{{Key: TaintToBeDeleted, Value: "1700000000", Effect: v1.TaintEffectNoSchedule}}
	if node, err = client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("not eligible with the autoscaler's taint", func(s health.Status) bool { return !s.Healthy && !s.NodeEligible && s.Live })
	node.Spec.Taints = nil
	if _, err = client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("eligible again", func(s health.Status) bool { return s.Healthy && s.NodeEligible })
}
