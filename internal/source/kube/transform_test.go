package kube

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// The cache keeps what ipvs-proxy reads and drops what it never does.
func TestStripUnused(t *testing.T) {
	svc := &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1",
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}},
		Annotations: map[string]string{
			lastApplied:                       `{"apiVersion":"v1","kind":"Service"}`,
			"ipvs-proxy.io/scheduler":         "lc",
			v1.EndpointsLastChangeTriggerTime: "2026-11-23T00:00:00Z",
		}},
		Spec: v1.ServiceSpec{ClusterIP: "10.96.0.10"}}
	out, err := stripUnused(svc)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*v1.Service)
	if got.ManagedFields != nil {
		t.Errorf("managed fields kept: %v", got.ManagedFields)
	}
	if _, ok := got.Annotations[lastApplied]; ok {
		t.Error("kubectl's last-applied copy kept")
	}
	if got.Annotations["ipvs-proxy.io/scheduler"] != "lc" || got.Annotations[v1.EndpointsLastChangeTriggerTime] == "" ||
		got.UID != "u1" || got.Spec.ClusterIP != "10.96.0.10" {
		t.Errorf("a field ipvs-proxy reads was lost: %+v", got)
	}
	// A deletion tombstone passes through unchanged.
	tomb := cache.DeletedFinalStateUnknown{Key: "default/web"}
	if out, err := stripUnused(tomb); err != nil || out != tomb {
		t.Errorf("tombstone: %v, %v", out, err)
	}
}
