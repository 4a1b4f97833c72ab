package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
)

// configMapDir lays out a directory the way the kubelet mounts a ConfigMap:
// config.conf -> ..data/config.conf, ..data -> ..<version>/, and updates it
// by swapping the ..data symlink atomically.
type configMapDir struct {
	t       *testing.T
	dir     string
	version int
}

func newConfigMapDir(t *testing.T, content string) *configMapDir {
	c := &configMapDir{t: t, dir: t.TempDir()}
	c.update(content)
	if err := os.Symlink(filepath.Join("..data", "config.conf"), filepath.Join(c.dir, "config.conf")); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *configMapDir) path() string { return filepath.Join(c.dir, "config.conf") }

func (c *configMapDir) update(content string) {
	c.t.Helper()
	c.version++
	ts := fmt.Sprintf("..2026_12_01_00_00_%02d", c.version)
	if err := os.Mkdir(filepath.Join(c.dir, ts), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, ts, "config.conf"), []byte(content), 0o644); err != nil {
		c.t.Fatal(err)
	}
	tmp := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		c.t.Fatal(err)
	}
	if c.version > 1 {
		_ = os.RemoveAll(filepath.Join(c.dir, fmt.Sprintf("..2026_12_01_00_00_%02d", c.version-1)))
	}
}

const reloadService = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec:\n  clusterIP: 10.96.0.10\n  ports: [{name: http, port: 80}]\n"

func reloadConfig(metrics, extra string) string {
	return "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\nhealthzBindAddress: \"\"\n" +
		"metricsBindAddress: " + metrics + "\n" + extra
}

// TestConfigReload: the daemon watches its config file in a ConfigMap
// volume. A changed scheduler and timeout are applied in place (edit-vs,
// the same kernel objects), an invalid file keeps the running configuration,
// and a changed metricsBindAddress stops the daemon cleanly (errRestart)
// with the kernel state kept.
func TestConfigReload(t *testing.T) {
	manifests := t.TempDir()
	if err := os.WriteFile(filepath.Join(manifests, "web.yaml"), []byte(reloadService), 0o644); err != nil {
		t.Fatal(err)
	}
	metricsAddr := freeAddr(t)
	cm := newConfigMapDir(t, reloadConfig(metricsAddr, "ipvs: {scheduler: rr}\n"))
	f, err := parseRunFlags([]string{"--manifests", manifests, "--node-name", "node-1", "--config", cm.path(), "--manifests-poll-period", "50ms"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	fk := fake.New(netip.MustParseAddr("10.0.0.1"))
	open := func(*zap.Logger) (kernel.Kernel, func(), error) { return fk.Interfaces(), func() {}, nil }
	core, logs := observer.New(zapcore.DebugLevel)
	done := make(chan error, 1)
	go func() { done <- run(context.Background(), f, zap.New(core), open) }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			select {
			case err := <-done:
				t.Fatalf("%s: the daemon stopped: %v", what, err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s; kernel:\n%s", what, fk.IPVS.Save())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("first sync", func() bool { return strings.Contains(fk.IPVS.Save(), "-A -t 10.96.0.10:80 -s rr") })

	cm.update(reloadConfig(metricsAddr, "ipvs: {scheduler: lc, tcpTimeout: 300s}\n"))
	waitFor("scheduler lc applied in place", func() bool { return strings.Contains(fk.IPVS.Save(), "-A -t 10.96.0.10:80 -s lc") })
	if got, _ := fk.IPVS.Timeouts(); got.TCP != 300*time.Second {
		t.Errorf("tcpTimeout not applied: %+v", got)
	}
	if body := get(t, "http://"+metricsAddr+"/configz"); !strings.Contains(body, `"scheduler":"lc"`) {
		t.Errorf("/configz does not show the new scheduler: %s", body)
	}

	cm.update(reloadConfig(metricsAddr, "ipvs: {scheduler: lcx}\n"))
	waitFor("invalid config reported", func() bool {
		return logs.FilterMessage("the config file changed but is invalid; keeping the running configuration").Len() == 1
	})
	if !strings.Contains(fk.IPVS.Save(), "-s lc") {
		t.Errorf("an invalid file changed the kernel:\n%s", fk.IPVS.Save())
	}
	if body := get(t, "http://"+metricsAddr+"/metrics"); !strings.Contains(body, `ipvsproxy_config_reloads_total{result="invalid"} 1`) ||
		!strings.Contains(body, `ipvsproxy_config_reloads_total{result="applied"} 1`) {
		t.Errorf("reloads not counted:\n%s", grepLines(body, "config_reloads"))
	}

	before := fk.IPVS.Save()
	cm.update(reloadConfig(freeAddr(t), "ipvs: {scheduler: lc, tcpTimeout: 300s}\n"))
	select {
	case err := <-done:
		if !errors.Is(err, errRestart) {
			t.Fatalf("a new metricsBindAddress: %v, want errRestart", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a new metricsBindAddress did not stop the daemon")
	}
	if fk.IPVS.Save() != before {
		t.Error("stopping for a restart changed the kernel")
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
