package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/syncevent"
)

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestDaemonLifecycle runs the whole daemon (standalone source, proxier,
// health, metrics and status servers, traffic counters) over a fake kernel,
// checks it programs the kernel and serves, then stops it and checks that
// no goroutine outlives it and that stopping flushed nothing.
func TestDaemonLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	manifest := "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec:\n  clusterIP: 10.96.0.10\n  ports: [{name: http, port: 80}]\n"
	if err := os.WriteFile(filepath.Join(dir, "web.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	healthz, metrics := freeAddr(t), freeAddr(t)
	events := filepath.Join(t.TempDir(), "syncs.jsonl")
	f, err := parseRunFlags([]string{"--manifests", dir, "--node-name", "node-1", "--healthz-bind-address", healthz,
		"--metrics-bind-address", metrics, "--manifests-poll-period", "50ms", "--sync-events", events}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	fk := fake.New(netip.MustParseAddr("10.0.0.1"))
	open := func(*zap.Logger) (kernel.Kernel, func(), error) { return fk.Interfaces(), func() {}, nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, f, zap.NewNop(), open) }()

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	get := func(url string) (int, string) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(fk.IPVS.Save(), "-A -t 10.96.0.10:80 -s rr") {
		if time.Now().After(deadline) {
			t.Fatal("the daemon did not program the kernel")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := get("http://" + healthz + "/livez"); code != 200 || !strings.Contains(body, "lastUpdated") {
		t.Errorf("/livez: %d %s", code, body)
	}
	if code, body := get("http://" + metrics + "/proxyMode"); code != 200 || body != "ipvs" {
		t.Errorf("/proxyMode: %d %q", code, body)
	}
	if code, body := get("http://" + metrics + "/metrics"); code != 200 || !strings.Contains(body, "kubeproxy_sync_proxy_rules_last_timestamp_seconds") {
		t.Errorf("/metrics: %d", code)
	}
	if code, body := get("http://" + metrics + "/status"); code != 200 || !strings.Contains(body, `"service": "default/web"`) {
		t.Errorf("/status: %d %s", code, body)
	}
	before := fk.IPVS.Save()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not stop")
	}
	if fk.IPVS.Save() != before {
		t.Error("stopping changed the kernel")
	}
	b, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	first, err := syncevent.Decode(bytes.SplitN(b, []byte("\n"), 2)[0])
	if err != nil || first.Seq != 1 || first.Type != syncevent.Full || !slices.Contains(first.Planned, "add-vs -A -t 10.96.0.10:80 -s rr") {
		t.Errorf("first sync event %+v (%v); file:\n%s", first, err, b)
	}
}
