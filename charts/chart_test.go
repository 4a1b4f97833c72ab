// Package charts_test checks the Helm chart and the monitoring files in it
// with the tools an operator uses: helm lint and template, kubectl apply
// --dry-run=server against a real kube-apiserver (the chart's output and
// every kustomization under manifests/), promtool check rules and test rules.
// The tools are built by scripts/tools/build.sh into _output/tools/bin;
// without them the tests skip, unless IPVS_PROXY_REQUIRE_TOOLS is set (make
// unit sets it), when they fail.
package charts_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
)

const chart = "ipvs-proxy"

// kubeVersion is what helm renders for: the Kubernetes release the tests' API server runs (scripts/k8s).
const kubeVersion = "1.34.4"

// tool returns the path of a tool built by scripts/tools/build.sh.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "_output", "tools", "bin", name))
	if err == nil {
		if fi, serr := os.Stat(p); serr == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	msg := name + " not built: run scripts/tools/build.sh"
	if os.Getenv("IPVS_PROXY_REQUIRE_TOOLS") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// run runs a command and returns its stdout; it fails the test on error.
func run(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.Bytes()
}

// valueSets are the chart configurations rendered and applied: the
// defaults, kube-proxy's ConfigMap, and everything on.
var valueSets = map[string][]string{
	"defaults":           {"--set", "apiServer=https://10.0.0.1:6443"},
	"kube-proxy-config":  {"--set", "kubeProxyConfigMap.use=true"},
	"monitoring-enabled": {"--set", "apiServer=https://10.0.0.1:6443,metrics.service.enabled=true,metrics.serviceMonitor.enabled=true,prometheusRule.enabled=true,grafanaDashboard.enabled=true,config.metricsBindAddress=0.0.0.0:10249", "--set-json", `extraArgs=["--traffic-metrics-period=30s"]`},
}

func render(t *testing.T, values []string) []byte {
	t.Helper()
	args := append([]string{"template", chart, chart, "--namespace", "kube-system", "--kube-version", kubeVersion}, values...)
	return run(t, nil, tool(t, "helm"), args...)
}

func TestHelmLint(t *testing.T) {
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			run(t, nil, tool(t, "helm"), append([]string{"lint", "--strict", "--namespace", "kube-system", "--kube-version", kubeVersion, chart}, values...)...)
		})
	}
}

// objects splits a multi-document YAML stream into its objects.
func objects(t *testing.T, stream []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, doc := range strings.Split(string(stream), "\n---") {
		var meta struct {
			Kind     string
			Metadata struct{ Name string }
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, doc)
		}
		if meta.Kind != "" {
			out[meta.Kind+"/"+meta.Metadata.Name] = []byte(doc)
		}
	}
	return out
}

func decode(t *testing.T, doc []byte, obj any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
}

// TestChartRenders: the chart's ConfigMap holds a valid KubeProxyConfiguration,
// its DaemonSet reads it (or kube-proxy's), its pods carry k8s-app:
// kube-proxy while its selector never matches kube-proxy's pods, and its
// ClusterRole is exactly manifests/base/clusterrole.yaml's.
func TestChartRenders(t *testing.T) {
	var want rbacv1.ClusterRole
	b, err := os.ReadFile("../manifests/base/clusterrole.yaml")
	if err != nil {
		t.Fatal(err)
	}
	decode(t, b, &want)
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			objs := objects(t, render(t, values))
			var ds appsv1.DaemonSet
			decode(t, objs["DaemonSet/ipvs-proxy"], &ds)
			pod := labels.Set(ds.Spec.Template.Labels)
			sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
			if err != nil || !sel.Matches(pod) || sel.Matches(labels.Set{"k8s-app": "kube-proxy"}) || pod["k8s-app"] != "kube-proxy" {
				t.Errorf("selector %v, pod labels %v: want the pods labelled k8s-app: kube-proxy, selected by other labels", sel, pod)
			}
			if m := ds.Spec.Template.Spec.Containers[0].VolumeMounts[0]; m.Name != "config" || m.MountPath != "/var/lib/kube-proxy" {
				t.Errorf("the ConfigMap is mounted as %s at %s, want config at /var/lib/kube-proxy (kubeadm's paths)", m.Name, m.MountPath)
			}
			cm := ds.Spec.Template.Spec.Volumes[0].ConfigMap.Name
			if name == "kube-proxy-config" {
				if cm != "kube-proxy" || objs["ConfigMap/ipvs-proxy"] != nil {
					t.Errorf("with kubeProxyConfigMap.use the DaemonSet must read kube-proxy's ConfigMap, not %q, and the chart ship none", cm)
				}
			} else {
				var m v1.ConfigMap
				decode(t, objs["ConfigMap/"+cm], &m)
				cfg, _, err := config.Parse([]byte(m.Data["config.conf"]))
				if err != nil {
					t.Fatalf("the chart's config.conf: %v", err)
				}
				// kubeadm's shape, mounted where kubeadm's config.conf looks for its kubeconfig
				if cfg.Kubeconfig != "/var/lib/kube-proxy/kubeconfig.conf" || !strings.Contains(m.Data["kubeconfig.conf"], "https://10.0.0.1:6443") {
					t.Errorf("the chart's ConfigMap must carry kubeconfig.conf with apiServer, named by config.conf: %q\n%s", cfg.Kubeconfig, m.Data["kubeconfig.conf"])
				}
			}
			var role rbacv1.ClusterRole
			decode(t, objs["ClusterRole/ipvs-proxy"], &role)
			if !reflect.DeepEqual(role.Rules, want.Rules) {
				t.Errorf("the chart's ClusterRole rules differ from manifests/base/clusterrole.yaml:\n%v\n%v", role.Rules, want.Rules)
			}
		})
	}
}

func TestAlertRules(t *testing.T) {
	promtool := tool(t, "promtool")
	run(t, nil, promtool, "check", "rules", filepath.Join(chart, "files", "ipvs-proxy-alerts.yaml"))
	run(t, nil, promtool, "test", "rules", "alerts_test.yaml")
}
