// Package manifests_test checks the deployment manifests: every file decodes
// strictly into the Kubernetes API types, the embedded KubeProxyConfiguration
// is valid, and the ClusterRole grants exactly what the code uses.
package manifests_test

import (
	"context"
	"net/netip"
	"os"
	"slices"
	"sort"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/source/kube"
)

type kustomization struct {
	Resources []string `json:"resources"`
}

// decodeStrict decodes a YAML file into obj, failing on unknown or duplicate fields.
func decodeStrict(t *testing.T, path string, obj any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	strict, err := k8sjson.UnmarshalStrict(js, obj)
	if err != nil || len(strict) > 0 {
		t.Fatalf("%s: %v %v", path, err, strict)
	}
}

func TestManifestsDecodeStrictly(t *testing.T) {
	var k kustomization
	data, _ := os.ReadFile("kustomization.yaml")
	if err := yaml.Unmarshal(data, &k); err != nil || len(k.Resources) == 0 {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	kinds := map[string]func() any{
		"ServiceAccount":     func() any { return &v1.ServiceAccount{} },
		"ClusterRole":        func() any { return &rbacv1.ClusterRole{} },
		"ClusterRoleBinding": func() any { return &rbacv1.ClusterRoleBinding{} },
		"ConfigMap":          func() any { return &v1.ConfigMap{} },
		"DaemonSet":          func() any { return &appsv1.DaemonSet{} },
	}
	seen := map[string]bool{}
	for _, r := range k.Resources {
		var meta struct{ Kind string }
		data, err := os.ReadFile(r)
		if err != nil {
			t.Fatalf("kustomization lists %s: %v", r, err)
		}
		_ = yaml.Unmarshal(data, &meta)
		newObj, ok := kinds[meta.Kind]
		if !ok {
			t.Fatalf("%s: unexpected kind %q", r, meta.Kind)
		}
		decodeStrict(t, r, newObj())
		seen[meta.Kind] = true
	}
	if len(seen) != len(kinds) {
		t.Fatalf("kustomization resources cover %v, want all of %v", seen, kinds)
	}
}

func TestConfigMapHoldsValidConfig(t *testing.T) {
	var cm v1.ConfigMap
	decodeStrict(t, "configmap.yaml", &cm)
	cfg, rep, err := config.Parse([]byte(cm.Data["config.conf"]))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) > 0 || len(rep.Infos) > 0 {
		t.Errorf("config.conf notes: %v %v", rep.Warnings, rep.Infos)
	}
	if cfg.IPVS.Scheduler != "rr" {
		t.Errorf("scheduler %q", cfg.IPVS.Scheduler)
	}
}

func TestDaemonSetWiring(t *testing.T) {
	var ds appsv1.DaemonSet
	decodeStrict(t, "daemonset.yaml", &ds)
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork || spec.ServiceAccountName != "ipvs-proxy" {
		t.Error("the DaemonSet must use the host network and the ipvs-proxy ServiceAccount")
	}
	c := spec.Containers[0]
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/livez" {
		t.Error("liveness must probe /livez")
	}
	if !slices.Contains(c.Command, "--config=/var/lib/ipvs-proxy/config.conf") {
		t.Errorf("command %v does not read the mounted config", c.Command)
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if spec.Volumes[0].Name != "config" || spec.Volumes[0].ConfigMap == nil {
		t.Fatal("volume 0 must be the config ConfigMap (the overlay patches it by index)")
	}
	for _, want := range []string{"config", "lib-modules", "xtables-lock"} {
		if mounts[want] == "" {
			t.Errorf("volume %s not mounted", want)
		}
	}
}

// TestClusterRoleGrantsExactlyWhatIsUsed runs the API server source against
// a recording fake client and compares the requests it makes (plus the
// Event writes of the reporter) with the ClusterRole's rules.
func TestClusterRoleGrantsExactlyWhatIsUsed(t *testing.T) {
	var role rbacv1.ClusterRole
	decodeStrict(t, "clusterrole.yaml", &role)
	granted := map[string]bool{}
	for _, r := range role.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					granted[g+"/"+res+":"+v] = true
				}
			}
		}
	}

	client := fake.NewSimpleClientset(&v1.Service{})
	// the API server has ServiceCIDRs (networking.k8s.io/v1), so they are watched
	client.Resources = []*metav1.APIResourceList{{GroupVersion: "networking.k8s.io/v1",
		APIResources: []metav1.APIResource{{Name: "servicecidrs", Kind: "ServiceCIDR"}}}}
	src := kube.NewWithClient(kube.Config{NodeName: "node-1", NodeWait: 10 * time.Millisecond}, client)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	sink := &nullSink{synced: make(chan struct{})}
	go func() { defer close(done); _ = src.Run(ctx, sink) }()
	select {
	case <-sink.synced:
	case <-time.After(10 * time.Second):
		t.Fatal("source never synced")
	}
	ev := src.Reporter()
	ev.Start(ctx)
	svc := &v1.Service{}
	svc.Namespace, svc.Name = "default", "web"
	_, _ = client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !hasAction(client.Actions(), "create", "events") {
		ev.ServiceErrors("default/web", []error{os.ErrInvalid})
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	<-done

	used := map[string]bool{}
	for _, a := range client.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "services" {
			continue // the test's own request
		}
		if a.GetResource().Resource == "resource" {
			continue // discovery, which every client may read (system:discovery)
		}
		used[a.GetResource().Group+"/"+a.GetResource().Resource+":"+a.GetVerb()] = true
	}
	// client-go's event broadcaster patches an Event when it repeats (a series)
	used["events.k8s.io/events:patch"] = true
	var extra, missing []string
	for g := range granted {
		if !used[g] {
			extra = append(extra, g)
		}
	}
	for u := range used {
		if !granted[u] {
			missing = append(missing, u)
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	if len(extra) > 0 || len(missing) > 0 {
		t.Errorf("ClusterRole grants unused %v and lacks used %v", extra, missing)
	}
}

func hasAction(actions []k8stesting.Action, verb, resource string) bool {
	return slices.ContainsFunc(actions, func(a k8stesting.Action) bool {
		return a.GetVerb() == verb && a.GetResource().Resource == resource
	})
}

type nullSink struct{ synced chan struct{} }

func (*nullSink) UpsertService(*v1.Service)            {}
func (*nullSink) DeleteService(string, string)         {}
func (*nullSink) UpsertSlice(*discovery.EndpointSlice) {}
func (*nullSink) DeleteSlice(string, string)           {}
func (*nullSink) SetNode(desired.Node)                 {}
func (*nullSink) SetServiceCIDRs([]netip.Prefix)       {}
func (s *nullSink) SetSynced()                         { close(s.synced) }
