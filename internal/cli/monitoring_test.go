package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/ipvs-proxy/ipvs-proxy/internal/metrics"
)

// The chart's dashboard and alert rules, which must not query series the
// daemon does not export (a blank panel, an alert that can never fire).
const (
	dashboardFile = "../../charts/ipvs-proxy/files/ipvs-proxy-dashboard.json"
	alertsFile    = "../../charts/ipvs-proxy/files/ipvs-proxy-alerts.yaml"
)

// descName finds a metric's name in a prometheus.Desc's String().
var descName = regexp.MustCompile(`fqName: "([a-z0-9_:]+)"`)

// seriesName matches the metric names a PromQL expression uses.
var seriesName = regexp.MustCompile(`\b(kubeproxy|ipvsproxy|rest_client|process|go)_[a-z0-9_]+\b`)

func queriedSeries(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	add := func(where, expr string) {
		for _, name := range seriesName.FindAllString(expr, -1) {
			used[name] = append(used[name], where)
		}
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			add("dashboard panel "+p.Title, target.Expr)
		}
	}
	var rules struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	if b, err = os.ReadFile(alertsFile); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			add("alert "+r.Alert, r.Expr)
		}
	}
	return used
}

// TestMonitoringQueriesExportedSeries: every series the dashboard and the
// alert rules query is on /metrics of a running daemon (with the traffic
// metrics on, after a client-go request), so after a migration no panel is
// blank for want of a series and no alert queries one that never exists.
func TestMonitoringQueriesExportedSeries(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"ServiceList","apiVersion":"v1","items":[]}`))
	}))
	defer srv.Close()
	if _, err := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL}).CoreV1().Services("").List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	addr := startDaemon(t, "--traffic-metrics-period", "20ms")
	var body string
	exported := map[string]bool{}
	waitFor := func() bool {
		body = get(t, "http://"+addr+"/metrics")
		return strings.Contains(body, "ipvsproxy_service_bytes_total")
	}
	for range 500 { // the traffic counters are read in the background
		if waitFor() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, line := range strings.Split(body, "\n") {
		if name, _, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "#") {
			name, _, _ = strings.Cut(name, "{")
			exported[name] = true
		}
	}
	// vectors without a child yet (no kernel error, no partial sync so far) are not scraped: take their names from the descriptors
	descs := make(chan *prometheus.Desc, 100)
	go func() { metrics.New().Registry.Describe(descs); close(descs) }()
	for d := range descs {
		if m := descName.FindStringSubmatch(d.String()); m != nil {
			for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
				exported[m[1]+suffix] = true
			}
		}
	}
	used := queriedSeries(t)
	if len(used) < 20 {
		t.Fatalf("only %d series queried: is the expression pattern right?", len(used))
	}
	var missing []string
	for name, where := range used {
		if !exported[name] {
			missing = append(missing, name+" ("+strings.Join(where, ", ")+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("queried but not exported:\n  %s", strings.Join(missing, "\n  "))
	}
}
