package charts_test

import (
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/apiserver"
)

// monitoringCRDs stand in for prometheus-operator's ServiceMonitor and
// PrometheusRule: the API server then accepts the kinds (their own schemas
// are prometheus-operator's to check, not the test's).
const monitoringCRDs = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  names: {kind: ServiceMonitor, plural: servicemonitors}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: prometheusrules.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  names: {kind: PrometheusRule, plural: prometheusrules}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`

// TestServerSideDryRun applies, with kubectl apply --dry-run=server and
// strict field validation, what an operator would apply: the chart rendered
// with each value set, and every kustomization under manifests/ (the base
// and its overlays), against a real kube-apiserver. Unknown fields, invalid
// values and objects the API server refuses fail the test.
func TestServerSideDryRun(t *testing.T) {
	kubectl := tool(t, "kubectl")
	tool(t, "helm") // render needs it: skip or fail before starting the API server
	srv := apiserver.StartForTest(t, apiserver.Options{})
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := srv.WriteKubeconfig(kubeconfig, ""); err != nil {
		t.Fatal(err)
	}
	k := func(t *testing.T, stdin []byte, args ...string) []byte {
		t.Helper()
		return run(t, stdin, kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	}
	k(t, []byte(monitoringCRDs), "apply", "-f", "-")
	k(t, nil, "wait", "--for=condition=Established", "--timeout=60s", "crd/servicemonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com")

	for name, values := range valueSets {
		t.Run("chart "+name, func(t *testing.T) {
			out := k(t, render(t, values), "apply", "--dry-run=server", "--validate=strict", "-f", "-")
			t.Logf("%s", out)
		})
	}
	var kustomizations []string
	_ = filepath.WalkDir("../manifests", func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "kustomization.yaml" {
			kustomizations = append(kustomizations, filepath.Dir(path))
		}
		return err
	})
	if len(kustomizations) < 2 {
		t.Fatalf("kustomizations under manifests/: %v, want the base and its overlays", kustomizations)
	}
	for _, dir := range kustomizations {
		t.Run("kustomize "+dir, func(t *testing.T) {
			built := k(t, nil, "kustomize", dir)
			out := k(t, built, "apply", "--dry-run=server", "--validate=strict", "-f", "-")
			t.Logf("%s", out)
		})
	}
}
