package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// configVolume is a directory laid out the way the kubelet mounts a
// ConfigMap (config.conf -> ..data/config.conf, ..data -> ..<version>/),
// updated the way the kubelet updates it: a new version directory, then
// ..data swapped to it by a rename.
type configVolume struct {
	t       *testing.T
	dir     string
	version int
}

func newConfigVolume(t *testing.T, content string) *configVolume {
	t.Helper()
	v := &configVolume{t: t, dir: t.TempDir()}
	v.update(content)
	if err := os.Symlink("..data/config.conf", v.path()); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v *configVolume) path() string { return filepath.Join(v.dir, "config.conf") }

func (v *configVolume) update(content string) {
	v.t.Helper()
	v.version++
	name := fmt.Sprintf("..2026_12_01_12_00_%02d.%d", v.version, 1000+v.version)
	for _, err := range []error{
		os.Mkdir(filepath.Join(v.dir, name), 0o755),
		os.WriteFile(filepath.Join(v.dir, name, "config.conf"), []byte(content), 0o644),
		os.Symlink(name, filepath.Join(v.dir, "..data_tmp")),
		os.Rename(filepath.Join(v.dir, "..data_tmp"), filepath.Join(v.dir, "..data")),
	} {
		if err != nil {
			v.t.Fatalf("update the config volume: %v", err)
		}
	}
}

// liveConfig is the scenario's KubeProxyConfiguration.
func liveConfig(metricsAddr, ipvs, conntrack string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
metricsBindAddress: %s
ipvs:
%s
conntrack:
%s
`, metricsAddr, ipvs, conntrack)
}

const (
	liveIPVSBefore    = "  scheduler: rr\n  syncPeriod: 30s"
	liveIPVSSettings  = "  scheduler: rr\n  syncPeriod: 4s\n  minSyncPeriod: 1s\n  strictARP: true\n  tcpTimeout: 900s\n  tcpFinTimeout: 30s\n  udpTimeout: 60s"
	liveIPVSScheduler = "  scheduler: lc\n  syncPeriod: 4s\n  minSyncPeriod: 1s\n  strictARP: true\n  tcpTimeout: 900s\n  tcpFinTimeout: 30s\n  udpTimeout: 60s"
	liveCTBefore      = "  maxPerCore: 32768\n  min: 131072"
	liveCTAfter       = "  maxPerCore: 65536\n  min: 262144"
)

// TestLiveConfig changes the daemon's config file the way `kubectl edit cm
// kube-proxy` does (the kubelet swaps the ConfigMap volume's ..data link)
// while a client loop sends a request through a ClusterIP every 50 ms:
//   - the IPVS timeouts, strictARP, syncPeriod 30s -> 4s, minSyncPeriod,
//     conntrack.maxPerCore and min: applied in place, without a restart, by
//     one full sync that plans only timeouts and sysctl operations; ipvsadm
//     shows the timeouts, arp_ignore and arp_announce are set,
//     nf_conntrack_max and the conntrack hash size are raised, the next full
//     sync comes 4 s later, not 30; 0 failed requests;
//   - the scheduler rr -> lc: one edit-vs, ipvsadm shows lc; the load may see
//     a refused connection or two (refusedBySwap: IPVS answers a SYN that
//     arrives while ip_vs_edit_service() swaps the scheduler with ICMP port
//     unreachable, a limit of the kernel that kube-proxy's restart path has
//     too), and nothing else;
//   - metricsBindAddress changed: a field that needs a restart, so the daemon
//     logs it and exits with status 3, leaving the kernel state as it was;
//     started again (as the kubelet restarts the container) it plans nothing
//     and serves /metrics on the new address; 0 failed requests.
func TestLiveConfig(t *testing.T) {
	framework.ResetKernel(t)
	ips := map[string]string{"pod-a": "10.244.1.2", "pod-b": "10.244.2.2"}
	for name, ip := range ips {
		framework.NewBackend(t, name, ip)
	}
	client := framework.Client{NS: framework.NewClientNS(t, "client", "10.250.0.2").Name, Timeout: 5 * time.Second}
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "web.yaml", `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
`)
	framework.WriteManifest(t, dir, "web-slice.yaml", sliceYAML("web", "web-1", []string{"http=8080/TCP"}, onNode("node-2", ips["pod-a"], ips["pod-b"])))
	volume := newConfigVolume(t, liveConfig(framework.MetricsAddr, liveIPVSBefore, liveCTBefore))
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir, ConfigFile: volume.path()})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)
	const vip = "10.96.0.10:80"
	load := framework.StartLoadEvery(t, client, framework.HTTP, vip, 50*time.Millisecond)
	waitSent(t, load, 10)

	t.Run("applied in place", func(t *testing.T) {
		before := load.Snapshot()
		full := len(proxy.FullSyncs())
		volume.update(liveConfig(framework.MetricsAddr, liveIPVSSettings, liveCTAfter))
		changed := time.Now()
		// the reload's full sync, then the next one 4 s after it (the old period was 30 s); a full sync reads
		// every rule: 5-25 s under emulation on a busy host
		syncs := proxy.WaitFullSyncs(t, full+2, 90*time.Second)
		t.Logf("two full syncs %.1fs after the ConfigMap volume changed", time.Since(changed).Seconds())
		reload := syncs[full]
		t.Logf("the reload's full sync: %s, planned %q", reload, reload.Planned)
		for _, op := range reload.Planned {
			if kind, _, _ := strings.Cut(op, " "); kind != "timeouts" && kind != "sysctl" {
				t.Errorf("the reload planned %q: want only timeouts and sysctl operations", op)
			}
		}
		if len(reload.Planned) != 4 {
			t.Errorf("the reload planned %d operations, want 4 (the timeouts, arp_ignore, arp_announce, nf_conntrack_max)", len(reload.Planned))
		}
		next := syncs[full+1]
		if next.Ops != 0 || next.Incomplete() {
			t.Errorf("the periodic full sync after the reload: %s, planned %q; want nothing", next, next.Planned)
		}
		gap := next.Start.Sub(reload.End)
		t.Logf("the next full sync began %.1fs after the reload's ended", gap.Seconds())
		if gap > 20*time.Second {
			t.Errorf("the next full sync began %.1fs after the reload's: the new syncPeriod (4s) is not in force", gap.Seconds())
		}
		if out := framework.IPVSADM(t, "-L", "--timeout"); !strings.Contains(out, "900 30 60") {
			t.Errorf("ipvsadm -L --timeout: %q, want 900 30 60", out)
		}
		for key, want := range map[string]string{"net/ipv4/conf/all/arp_ignore": "1", "net/ipv4/conf/all/arp_announce": "2",
			"net/netfilter/nf_conntrack_max": "262144"} {
			if got := framework.ReadSysctl(t, key); got != want {
				t.Errorf("sysctl %s = %s, want %s", key, got, want)
			}
		}
		if b, err := os.ReadFile("/sys/module/nf_conntrack/parameters/hashsize"); err != nil || strings.TrimSpace(string(b)) != "65536" {
			t.Errorf("conntrack hash size %q (%v), want 65536 (nf_conntrack_max / 4)", b, err)
		}
		if m, err := framework.ScrapeMetrics(framework.MetricsAddr); err != nil || m[`ipvsproxy_config_reloads_total{result="applied"}`] != 1 {
			t.Errorf("ipvsproxy_config_reloads_total{result=\"applied\"}: %v %v", m[`ipvsproxy_config_reloads_total{result="applied"}`], err)
		}
		after := load.Snapshot()
		t.Logf("load during the reload: %d requests, %d failed, backends %v", after.Sent-before.Sent, after.Failed-before.Failed, after.Backends)
		if after.Failed != before.Failed {
			t.Errorf("%d requests failed while the configuration was applied in place, want 0: %v", after.Failed-before.Failed, after.Errors)
		}
	})

	t.Run("scheduler changed in place", func(t *testing.T) {
		before, syncs := load.Snapshot(), len(proxy.Syncs())
		volume.update(liveConfig(framework.MetricsAddr, liveIPVSScheduler, liveCTAfter))
		changed := time.Now()
		framework.Eventually(t, 90*time.Second, func() error {
			if vs := framework.IPVSService(t, "TCP", vip); vs == nil || vs.Scheduler != "lc" {
				return fmt.Errorf("ipvsadm does not show lc yet")
			}
			return nil
		})
		t.Logf("ipvsadm showed lc %.1fs after the ConfigMap volume changed", time.Since(changed).Seconds())
		framework.Eventually(t, 30*time.Second, func() error {
			if ops := plannedOpsSince(proxy, syncs); !slices.Contains(ops, "edit-vs -E -t "+vip+" -s lc") {
				return fmt.Errorf("the edit-vs is not logged yet: %q", ops)
			}
			return nil
		})
		if ops := plannedOpsSince(proxy, syncs); len(ops) != 1 {
			t.Errorf("the scheduler change planned %q, want only edit-vs -E -t %s -s lc", ops, vip)
		}
		after := load.Snapshot()
		failed, errs := after.Failed-before.Failed, subtractCounts(after.Errors, before.Errors)
		t.Logf("load during the scheduler change: %d requests, %d failed: %v", after.Sent-before.Sent, failed, errs)
		if failed > refusedBySwap || !onlyRefused(errs) {
			t.Errorf("%d requests failed during the scheduler change, want at most %d refused while IPVS swaps the scheduler: %v", failed, refusedBySwap, errs)
		}
	})

	t.Run("restart for a new metricsBindAddress", func(t *testing.T) {
		before, kernel := load.Snapshot(), kernelSnapshot(t)
		const newMetrics = "127.0.0.1:10259"
		volume.update(liveConfig(newMetrics, liveIPVSScheduler, liveCTAfter))
		err := proxy.Wait(60 * time.Second) // after the sync under way, if any
		if err == nil || !strings.Contains(err.Error(), "exit status 3") {
			t.Errorf("the daemon exited with %v, want exit status 3", err)
		}
		// what the operator reads: the field that needs the restart, once
		var said []framework.LogEntry
		for _, e := range framework.ParseLog(proxy.Logs()) {
			if e.Says("need a restart") {
				said = append(said, e)
			}
		}
		if len(said) != 1 || !said[0].Says("metricsBindAddress") {
			t.Errorf("the daemon did not say which field needs the restart: %v", said)
		}
		expectUnchanged(t, kernel, "when the daemon stopped for a restart")
		proxy.Start()
		first := proxy.WaitFullSyncs(t, 1, 60*time.Second)[0]
		if first.Ops != 0 {
			t.Errorf("the restarted daemon's first full sync: %s, planned %q; want nothing", first, first.Planned)
		}
		if _, err := framework.ScrapeMetrics(newMetrics); err != nil {
			t.Errorf("/metrics on the new metricsBindAddress %s: %v", newMetrics, err)
		}
		after := load.Snapshot()
		t.Logf("load through the restart: %d requests, %d failed", after.Sent-before.Sent, after.Failed-before.Failed)
		if after.Failed != before.Failed {
			t.Errorf("%d requests failed through the restart, want 0: %v", after.Failed-before.Failed, after.Errors)
		}
	})
	res := load.Stop()
	t.Logf("HTTP %s in a loop through both changes: %s", vip, res)
}
