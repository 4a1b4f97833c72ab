// Package manifests_test checks the deployment manifests as kubectl sees them: every variant (manifests/ and each
// directory under overlays/) builds with kustomize, the kubectl kustomize library; every object decodes strictly
// into the Kubernetes API types; the files the kubelet would mount hold a valid KubeProxyConfiguration whose
// kubeconfig path exists in the container; and the ClusterRole grants exactly what the code uses.
package manifests_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/tools/clientcmd"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// variant is what one kustomization directory builds.
type variant struct {
	dir        string
	daemonSet  *appsv1.DaemonSet
	configMaps []*v1.ConfigMap
	roles      []*rbacv1.ClusterRole
	kinds      []string
}

// variants returns manifests/ and every overlay, each built the way `kubectl kustomize DIR` builds it.
func variants(t *testing.T) []*variant {
	t.Helper()
	overlays, err := filepath.Glob("overlays/*/kustomization.yaml")
	if err != nil || len(overlays) == 0 {
		t.Fatalf("no overlays/*/kustomization.yaml: %v", err)
	}
	dirs := []string{"."}
	for _, o := range overlays {
		dirs = append(dirs, filepath.Dir(o))
	}
	var out []*variant
	for _, dir := range dirs {
		out = append(out, build(t, dir))
	}
	return out
}

// build runs kustomize on dir and decodes every object it yields strictly into its API type.
func build(t *testing.T, dir string) *variant {
	t.Helper()
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	v := &variant{dir: dir}
	for _, res := range resMap.Resources() {
		js, err := res.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		kind := res.GetKind()
		v.kinds = append(v.kinds, kind)
		var obj any
		switch kind {
		case "DaemonSet":
			v.daemonSet = &appsv1.DaemonSet{}
			obj = v.daemonSet
		case "ConfigMap":
			cm := &v1.ConfigMap{}
			v.configMaps = append(v.configMaps, cm)
			obj = cm
		case "ClusterRole":
			role := &rbacv1.ClusterRole{}
			v.roles = append(v.roles, role)
			obj = role
		case "ClusterRoleBinding":
			obj = &rbacv1.ClusterRoleBinding{}
		case "ServiceAccount":
			obj = &v1.ServiceAccount{}
		default:
			t.Fatalf("%s: unexpected kind %q", dir, kind)
		}
		strict, err := k8sjson.UnmarshalStrict(js, obj)
		if err != nil || len(strict) > 0 {
			t.Fatalf("%s: %s %s: %v %v", dir, kind, res.GetName(), err, strict)
		}
	}
	if v.daemonSet == nil {
		t.Fatalf("%s: no DaemonSet", dir)
	}
	return v
}

func TestEveryVariantBuilds(t *testing.T) {
	for _, v := range variants(t) {
		slices.Sort(v.kinds)
		want := []string{"ClusterRole", "ClusterRoleBinding", "DaemonSet", "ServiceAccount"}
		if v.dir == "." {
			want = []string{"ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "ServiceAccount"}
		}
		if !slices.Equal(v.kinds, want) {
			t.Errorf("%s builds %v, want %v", v.dir, v.kinds, want)
		}
		if v.daemonSet.Namespace != "kube-system" {
			t.Errorf("%s: DaemonSet in namespace %q", v.dir, v.daemonSet.Namespace)
		}
	}
}

func TestDaemonSetWiring(t *testing.T) {
	version, err := os.ReadFile("../VERSION")
	if err != nil {
		t.Fatal(err)
	}
	wantImage := "ghcr.io/ipvs-proxy/ipvs-proxy:" + strings.TrimSpace(string(version))
	for _, v := range variants(t) {
		spec := v.daemonSet.Spec.Template.Spec
		if !spec.HostNetwork || spec.ServiceAccountName != "ipvs-proxy" {
			t.Errorf("%s: the DaemonSet must use the host network and the ipvs-proxy ServiceAccount", v.dir)
		}
		// Cluster DNS is a Service this daemon programs: resolving through it would be a circle on a fresh node.
		if spec.DNSPolicy != v1.DNSDefault {
			t.Errorf("%s: dnsPolicy %q, want Default (the node's resolvers)", v.dir, spec.DNSPolicy)
		}
		c := spec.Containers[0]
		if c.Image != wantImage {
			t.Errorf("%s: image %q, want %q (what make image builds from VERSION)", v.dir, c.Image, wantImage)
		}
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/livez" {
			t.Errorf("%s: liveness must probe /livez", v.dir)
		}
		// a slow start (a starved node) must not be taken for a stuck daemon
		if c.StartupProbe == nil || c.StartupProbe.HTTPGet.Path != "/livez" || c.LivenessProbe.InitialDelaySeconds != 0 {
			t.Errorf("%s: a startup probe on /livez must hold the liveness probe back until the daemon serves", v.dir)
		}
		for _, want := range []string{"config", "lib-modules", "xtables-lock"} {
			if !slices.ContainsFunc(c.VolumeMounts, func(m v1.VolumeMount) bool { return m.Name == want }) {
				t.Errorf("%s: volume %s not mounted", v.dir, want)
			}
		}
	}
}

// TestConfigFilesAsMounted lays out each variant's ConfigMap the way the kubelet mounts it (a file per key under
// the mount path) and follows the paths the daemon follows: --config, then clientConnection.kubeconfig, then the
// ServiceAccount token and CA the kubeconfig names. The overlay gets a ConfigMap exactly like the one kubeadm
// writes (testdata/kubeadm-kube-proxy.yaml).
func TestConfigFilesAsMounted(t *testing.T) {
	var kubeadm v1.ConfigMap
	decodeStrict(t, "testdata/kubeadm-kube-proxy.yaml", &kubeadm)
	for _, v := range variants(t) {
		spec := v.daemonSet.Spec.Template.Spec
		vol := spec.Volumes[0]
		cm := kubeadm
		if len(v.configMaps) == 1 {
			cm = *v.configMaps[0]
		}
		if vol.ConfigMap == nil || vol.ConfigMap.Name != cm.Name {
			t.Errorf("%s: volume 0 is %+v, want ConfigMap %s", v.dir, vol.VolumeSource, cm.Name)
			continue
		}
		files := mountedFiles(t, spec.Containers[0], vol.Name, cm)
		checkMountedConfig(t, v.dir, spec.Containers[0].Command, files)
	}
}

// mountedFiles returns the container's files from cm (path -> content) and the projected ServiceAccount files.
func mountedFiles(t *testing.T, c v1.Container, volume string, cm v1.ConfigMap) map[string]string {
	t.Helper()
	files := map[string]string{
		"/var/run/secrets/kubernetes.io/serviceaccount/token":  "token",
		"/var/run/secrets/kubernetes.io/serviceaccount/ca.crt": "ca",
	}
	for _, m := range c.VolumeMounts {
		if m.Name != volume {
			continue
		}
		for key, data := range cm.Data {
			files[filepath.Join(m.MountPath, key)] = data
		}
	}
	return files
}

func checkMountedConfig(t *testing.T, dir string, command []string, files map[string]string) {
	t.Helper()
	var configPath string
	for _, arg := range command {
		if p, ok := strings.CutPrefix(arg, "--config="); ok {
			configPath = p
		}
	}
	data, ok := files[configPath]
	if !ok {
		t.Errorf("%s: --config=%s is not a mounted file (%v)", dir, configPath, keys(files))
		return
	}
	cfg := parseConfig(t, dir, data)
	kubeconfig, ok := files[cfg.Kubeconfig]
	if !ok {
		t.Errorf("%s: clientConnection.kubeconfig %q is not a mounted file (%v)", dir, cfg.Kubeconfig, keys(files))
		return
	}
	kc, err := clientcmd.Load([]byte(kubeconfig))
	if err != nil {
		t.Errorf("%s: %s: %v", dir, cfg.Kubeconfig, err)
		return
	}
	for name, user := range kc.AuthInfos {
		if _, ok := files[user.TokenFile]; !ok {
			t.Errorf("%s: kubeconfig user %s: tokenFile %q is not in the pod", dir, name, user.TokenFile)
		}
	}
	for name, cluster := range kc.Clusters {
		if _, ok := files[cluster.CertificateAuthority]; !ok {
			t.Errorf("%s: kubeconfig cluster %s: certificate-authority %q is not in the pod", dir, name, cluster.CertificateAuthority)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestDefaultKubeconfigNeedsServer: ipvs-proxy's own kubeconfig.conf ships without a server, so that a pod
// applied without setting it stops at once, naming the problem, instead of waiting forever for the kubernetes
// Service's ClusterIP that nothing serves on a fresh node.
func TestDefaultKubeconfigNeedsServer(t *testing.T) {
	v := build(t, ".")
	kc, err := clientcmd.Load([]byte(v.configMaps[0].Data["kubeconfig.conf"]))
	if err != nil {
		t.Fatal(err)
	}
	_, err = clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
	if err == nil || !strings.Contains(err.Error(), "no server") {
		t.Fatalf("an empty server must be refused, got %v", err)
	}
	kc.Clusters["default"].Server = "https://192.0.2.10:6443"
	// Only in the pod:
	kc.Clusters["default"].CertificateAuthority = ""
	kc.AuthInfos["default"].TokenFile = ""
	if _, err := clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig(); err != nil {
		t.Fatalf("with a server set: %v", err)
	}
}

// decodeStrict decodes a YAML file into obj, failing on unknown or duplicate fields.
func decodeStrict(t *testing.T, path string, obj any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(bytes.TrimSpace(data))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	strict, err := k8sjson.UnmarshalStrict(js, obj)
	if err != nil || len(strict) > 0 {
		t.Fatalf("%s: %v %v", path, err, strict)
	}
}
