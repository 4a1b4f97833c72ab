package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
)

// startDaemon runs the daemon over a fake kernel on manifests holding
// default/web and kube-system/dns until the test ends; it returns the
// metrics address once the kernel is programmed.
func startDaemon(t *testing.T, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	for name, ns := range map[string]string{"web": "default", "dns": "kube-system"} {
		m := "apiVersion: v1\nkind: Service\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec:\n  clusterIP: 10.96.0." +
			map[string]string{"web": "10", "dns": "11"}[name] + "\n  ports: [{name: p, port: 80}]\n"
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	metrics := freeAddr(t)
	args := append([]string{"--manifests", dir, "--node-name", "node-1", "--healthz-bind-address", freeAddr(t),
		"--metrics-bind-address", metrics, "--manifests-poll-period", "50ms"}, extra...)
	f, err := parseRunFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	fk := fake.New(netip.MustParseAddr("10.0.0.1"))
	open := func(*zap.Logger) (kernel.Kernel, func(), error) { return fk.Interfaces(), func() {}, nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, f, zap.NewNop(), open) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(fk.IPVS.Save(), "10.96.0.11:80") {
		if time.Now().After(deadline) {
			t.Fatal("the daemon did not program the kernel")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return metrics
}

func httpCode(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestMetricsAddress: /configz serves the effective KubeProxyConfiguration
// under kube-proxy's key; /debug/pprof only with --profiling
// (enableProfiling); per-Service traffic metrics are off by default.
func TestMetricsAddress(t *testing.T) {
	addr := startDaemon(t, "--ipvs-scheduler", "wrr")
	var cz map[string]struct {
		Mode string
		IPVS struct{ Scheduler string }
	}
	if err := json.Unmarshal([]byte(get(t, "http://"+addr+"/configz")), &cz); err != nil {
		t.Fatal(err)
	}
	if c := cz["kubeproxy.config.k8s.io"]; c.Mode != "ipvs" || c.IPVS.Scheduler != "wrr" {
		t.Errorf("/configz: %+v", cz)
	}
	if code := httpCode(t, "http://"+addr+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without enableProfiling: %d, want 404", code)
	}
	body := get(t, "http://"+addr+"/metrics")
	if strings.Contains(body, "ipvsproxy_service_connections_total") {
		t.Error("per-Service traffic metrics without --traffic-metrics-period")
	}
	if strings.Contains(body, "ipvsproxy_fault_injection_rate") {
		t.Error("the fault injection rate without fault injection")
	}
	for _, want := range []string{"ipvsproxy_build_info{", "ipvsproxy_source_stale_seconds 0", "ipvsproxy_config_last_reload_successful 1",
		`kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"}`, "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// the rate a scenario wrote is known to be read when the metric says it
	faulty := startDaemon(t, "--fault-inject-rate", "0.25")
	if body := get(t, "http://"+faulty+"/metrics"); !strings.Contains(body, "ipvsproxy_fault_injection_rate 0.25") {
		t.Error("/metrics lacks ipvsproxy_fault_injection_rate 0.25 with --fault-inject-rate 0.25")
	}

	prof := startDaemon(t, "--profiling")
	if code := httpCode(t, "http://"+prof+"/debug/pprof/"); code != http.StatusOK {
		t.Errorf("/debug/pprof/ with --profiling: %d", code)
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+prof+"/debug/flags/v", strings.NewReader("0"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("PUT /debug/flags/v: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestTrafficMetricsOptIn: with a period the per-Service traffic series
// appear, for every Service or only for the namespaces named.
func TestTrafficMetricsOptIn(t *testing.T) {
	series := func(ns string) string { return `ipvsproxy_service_connections_total{namespace="` + ns + `"` }
	// the counters are read in the background: wait for the series that must come
	scrape := func(addr string, want ...string) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			body := get(t, "http://"+addr+"/metrics")
			missing := false
			for _, ns := range want {
				missing = missing || !strings.Contains(body, series(ns))
			}
			if !missing {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("no traffic series for %v after 10s:\n%s", want, grepLines(body, "ipvsproxy_service_"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	scrape(startDaemon(t, "--traffic-metrics-period", "20ms"), "default", "kube-system")
	only := scrape(startDaemon(t, "--traffic-metrics-period", "20ms", "--traffic-metrics-namespaces", "kube-system"), "kube-system")
	if strings.Contains(only, series("default")) {
		t.Errorf("--traffic-metrics-namespaces kube-system exports default's:\n%s", grepLines(only, "ipvsproxy_service_"))
	}
}

// TestHealthzCounted: every answer of /healthz and /livez is counted by
// status code, as kube-proxy's proxy_healthz_total and proxy_livez_total.
func TestHealthzCounted(t *testing.T) {
	healthz := freeAddr(t)
	metrics := startDaemon(t, "--healthz-bind-address", healthz)
	// /healthz is 503 until the first full sync has finished, a moment
	// after the kernel shows its work: the first 200 is the first of three
	for deadline := time.Now().Add(10 * time.Second); httpCode(t, "http://"+healthz+"/healthz") != http.StatusOK; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("/healthz not 200 after 10 s")
		}
	}
	for range 2 {
		httpCode(t, "http://"+healthz+"/healthz")
	}
	httpCode(t, "http://"+healthz+"/livez")
	body := get(t, "http://"+metrics+"/metrics")
	for _, want := range []string{`kubeproxy_proxy_healthz_total{code="200"} 3`, `kubeproxy_proxy_livez_total{code="200"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(body, "proxy_"))
		}
	}
}
