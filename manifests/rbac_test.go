package manifests_test

import (
	"context"
	"net/netip"
	"os"
	"slices"
	"sort"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/source/kube"
)

// parseConfig parses a config.conf as the daemon does; it must be valid, in ipvs mode, with no warnings.
func parseConfig(t *testing.T, where, data string) *config.Config {
	t.Helper()
	cfg, rep, err := config.Parse([]byte(data))
	if err != nil {
		t.Fatalf("%s: config.conf: %v", where, err)
	}
	if len(rep.Warnings) > 0 {
		t.Errorf("%s: config.conf warnings: %v", where, rep.Warnings)
	}
	return cfg
}

// TestClusterRoleGrantsExactlyWhatIsUsed runs the API server source against
// a recording fake client and compares the requests it makes (plus the
// Event writes of the reporter) with the ClusterRole's rules.
func TestClusterRoleGrantsExactlyWhatIsUsed(t *testing.T) {
	var role rbacv1.ClusterRole
	decodeStrict(t, "base/clusterrole.yaml", &role)
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
