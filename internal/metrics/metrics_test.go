package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	k8smetrics "k8s.io/component-base/metrics"
)

// TestFamilies: the kubeproxy_sync_* timings carry ip_family, one series per
// family the node serves, and nothing before the families are known.
func TestFamilies(t *testing.T) {
	m := New()
	m.SyncDuration.Observe(0.1)
	m.LastSync.SetToCurrentTime()
	if n := testutil.CollectAndCount(m.Registry, "kubeproxy_sync_proxy_rules_duration_seconds"); n != 0 {
		t.Errorf("%d series before SetFamilies", n)
	}
	m.SetFamilies([]string{IPv4, IPv6})
	m.SyncDuration.Observe(0.1)
	m.NetworkProgramming.Observe(2)
	m.LastSync.SetToCurrentTime()
	for _, name := range []string{"kubeproxy_sync_proxy_rules_duration_seconds", "kubeproxy_network_programming_duration_seconds",
		"kubeproxy_sync_proxy_rules_last_timestamp_seconds"} {
		if n := testutil.CollectAndCount(m.Registry, name); n != 2 {
			t.Errorf("%s: %d series, want one per family", name, n)
		}
	}
	out := gather(t, m.Registry)
	if !strings.Contains(out, `kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv6"} 1`) {
		t.Errorf("no IPv6 series:\n%s", out)
	}
}

// TestUpstreamBuckets: network_programming_duration_seconds and the sync
// durations have kube-proxy's buckets (pkg/proxy/metrics), so that
// histogram_quantile over a fleet of both gives one answer.
func TestUpstreamBuckets(t *testing.T) {
	upstream := k8smetrics.MergeBuckets(
		k8smetrics.LinearBuckets(0.25, 0.25, 2),
		k8smetrics.LinearBuckets(1, 1, 59),
		k8smetrics.LinearBuckets(60, 5, 12),
		k8smetrics.LinearBuckets(120, 30, 7),
	)
	if got := programmingBuckets(); !slices.Equal(got, upstream) {
		t.Errorf("network programming buckets %v, want kube-proxy's %v", got, upstream)
	}
	m := New()
	m.SetFamilies([]string{IPv4})
	m.SyncDuration.Observe(0.1)
	out := gather(t, m.Registry)
	want := k8smetrics.ExponentialBuckets(0.001, 2, 15)
	if n := strings.Count(out, "kubeproxy_sync_proxy_rules_duration_seconds_bucket{"); n != len(want)+1 {
		t.Errorf("%d sync duration buckets, want kube-proxy's %d and +Inf", n, len(want))
	}
}

// TestGathererHasClientGoAndRuntime: /metrics has client-go's rest_client_*
// (component-base's adapter, as in kube-proxy) once a request was made, and
// the Go and process series, besides ipvs-proxy's own.
func TestGathererHasClientGoAndRuntime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"ServiceList","apiVersion":"v1","items":[]}`))
	}))
	defer srv.Close()
	client := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})
	if _, err := client.CoreV1().Services("").List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	m := New()
	m.Registry.MustRegister(BuildInfo("v1.2.3", "abc"))
	out := gather(t, m.Gatherer())
	for _, want := range []string{`rest_client_requests_total{code="200"`, "rest_client_request_duration_seconds_bucket",
		"go_goroutines", "process_start_time_seconds", `ipvsproxy_build_info{git_commit="abc",go_version=`, "kubeproxy_sync_proxy_rules_endpoint_changes_total"} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// gather renders g as /metrics would.
func gather(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}).
		ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}
