package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
)

// Helpers of TestMigration: the scenarios' YAML manifests created through the
// API server (both daemons read the same objects), and line diffs of kernel
// state.

// ensureNode creates Node name if it is missing and gives it InternalIP ip:
// kube-proxy takes the node's addresses from there.
func ensureNode(ctx context.Context, t testing.TB, c kubernetes.Interface, name, ip string) {
	t.Helper()
	node, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, err = c.CoreV1().Nodes().Create(ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	}
	if err != nil {
		t.Fatalf("Node %s: %v", name, err)
	}
	node.Status.Addresses = []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: ip}}
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("Node %s: set its address: %v", name, err)
	}
}

// applyYAML creates (or replaces) the Services and EndpointSlices of a
// multi-document manifest through the API, a Service's load balancer status
// included, and deletes them when the test ends.
func applyYAML(ctx context.Context, t testing.TB, c kubernetes.Interface, text string) {
	t.Helper()
	for _, doc := range strings.Split(text, "---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("decode manifest: %v\n%s", err, doc)
		}
		switch o := obj.(type) {
		case *v1.Service:
			applyService(ctx, t, c, o)
		case *discovery.EndpointSlice:
			applySlice(ctx, t, c, o)
		default:
			t.Fatalf("applyYAML: unexpected %T", obj)
		}
	}
}

func applyService(ctx context.Context, t testing.TB, c kubernetes.Interface, svc *v1.Service) {
	t.Helper()
	api := c.CoreV1().Services(svc.Namespace)
	status := svc.Status
	got, err := api.Get(ctx, svc.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		got, err = api.Create(ctx, svc, metav1.CreateOptions{})
		name := svc.Name
		t.Cleanup(func() { _ = api.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	case err == nil:
		svc.ResourceVersion = got.ResourceVersion
		got, err = api.Update(ctx, svc, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatalf("Service %s/%s: %v", svc.Namespace, svc.Name, err)
	}
	if len(status.LoadBalancer.Ingress) > 0 {
		got.Status = status
		if _, err := api.UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("Service %s/%s: status: %v", svc.Namespace, svc.Name, err)
		}
	}
}

func applySlice(ctx context.Context, t testing.TB, c kubernetes.Interface, s *discovery.EndpointSlice) {
	t.Helper()
	api := c.DiscoveryV1().EndpointSlices(s.Namespace)
	got, err := api.Get(ctx, s.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, s, metav1.CreateOptions{})
		name := s.Name
		t.Cleanup(func() { _ = api.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	case err == nil:
		s.ResourceVersion = got.ResourceVersion
		_, err = api.Update(ctx, s, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatalf("EndpointSlice %s/%s: %v", s.Namespace, s.Name, err)
	}
}

// lineDiff returns the lines only in a ("-") and only in b ("+"), sorted:
// kernel dumps whose order carries no meaning.
func lineDiff(a, b string) []string {
	count := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		count[l]--
	}
	for _, l := range strings.Split(b, "\n") {
		count[l]++
	}
	var out []string
	for l, n := range count {
		for ; n < 0; n++ {
			out = append(out, "- "+l)
		}
		for ; n > 0; n-- {
			out = append(out, "+ "+l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][2:]+out[i][:1] < out[j][2:]+out[j][:1] })
	return out
}

// kernelDiff renders the differences of two kernelSnapshots for the log.
func kernelDiff(a, b map[string]string) string {
	var s strings.Builder
	for _, what := range []string{"ipvsadm -Sn", "ipset save", "iptables-save"} {
		d := lineDiff(a[what], b[what])
		fmt.Fprintf(&s, "%s: %d lines differ\n", what, len(d))
		for _, l := range d {
			fmt.Fprintf(&s, "  %s\n", l)
		}
	}
	return s.String()
}
