package manifests_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// kubeadmProxyPodLabels are the labels of the pods of kubeadm's kube-proxy
// DaemonSet (its selector is the same: k8s-app: kube-proxy).
var kubeadmProxyPodLabels = labels.Set{"k8s-app": "kube-proxy"}

// TestDaemonSetLabels: ipvs-proxy's pods carry k8s-app: kube-proxy, the
// label monitoring stacks select kube-proxy by, while the DaemonSet's own
// selector matches its pods and never kube-proxy's, so the two DaemonSets
// can run side by side during a migration.
func TestDaemonSetLabels(t *testing.T) {
	var ds appsv1.DaemonSet
	decodeStrict(t, "base/daemonset.yaml", &ds)
	pod := labels.Set(ds.Spec.Template.Labels)
	if pod["k8s-app"] != "kube-proxy" {
		t.Errorf("pod labels %v: want k8s-app: kube-proxy, which kube-prometheus-stack's kube-proxy Service selects", pod)
	}
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(pod) {
		t.Errorf("selector %s does not match the DaemonSet's own pods %v", sel, pod)
	}
	if sel.Matches(kubeadmProxyPodLabels) {
		t.Errorf("selector %s matches kube-proxy's pods %v", sel, kubeadmProxyPodLabels)
	}
}
