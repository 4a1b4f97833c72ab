package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// tenantService is aaa/tenant (a namespace that sorts before default) at
// 10.96.0.30, annotated with a scheduler.
func tenantService(scheduler string) string {
	return joinYAML(fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: tenant, namespace: aaa, annotations: {ipvs-proxy.io/scheduler: %s}}
spec:
  clusterIP: 10.96.0.30
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
`, scheduler), strings.ReplaceAll(sliceYAML("tenant", "tenant-1", []string{"http=8080/TCP"}, onNode("node-1", "10.244.1.2")), "namespace: default", "namespace: aaa"))
}

// TestOneTenantCannotHurtTheNode: with client loops on a ClusterIP and a
// NodePort Service and /healthz watched every 200 ms, two things that used
// to take the node down happen in turn (--ipvs-sync-period 2s, so a change
// may wait 4 s before /healthz fails):
//   - the node's address read fails (--fault-inject-reads-file) for at least
//     two full syncs: they keep the last good addresses and plan nothing;
//     the kernel is unchanged (it used to fall back to the Node object's
//     addresses, none in standalone mode, and delete every virtual server);
//   - a tenant's Service names a scheduler whose module the kernel lacks
//     (ip_vs_sh unloaded, on-demand loading disabled as in
//     TestMissingKernelModules): it is programmed with the default rr, and
//     `ipvs-proxy status` and ipvsproxy_invalid_objects report it with the
//     modprobe line; full syncs stay complete (they used to fail every time,
//     turning /healthz 503 on every node). Once the module is loaded, the
//     next full sync moves the Service to sh.
//
// Throughout: 0 failed requests on the other Services, every /healthz
// answer 200, /livez 200.
func TestOneTenantCannotHurtTheNode(t *testing.T) {
	framework.ResetKernel(t)
	framework.NewBackend(t, "pod-a", "10.244.1.2")
	framework.NewBackend(t, "pod-b", "10.244.2.2")
	client := framework.Client{NS: framework.NewClientNS(t, "client", "10.250.0.2").Name, Timeout: 5 * time.Second}
	dir := t.TempDir()
	eps := onNode("node-1", "10.244.1.2", "10.244.2.2")
	framework.WriteManifest(t, dir, "web.yaml", joinYAML(webService("10.96.0.10", ""), webSlice("web-1", "10.244.1.2", "10.244.2.2")))
	framework.WriteManifest(t, dir, "np.yaml", joinYAML(nodePortService, sliceYAML("np", "np-1", []string{"http=8080/TCP"}, eps)))
	reads := filepath.Join(t.TempDir(), "failing-reads")
	setReads := func(proxy *framework.Proxy, names string) {
		t.Helper()
		mark := len(proxy.Logs())
		if err := os.WriteFile(reads, []byte(names+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 10*time.Second, func() error {
			if len(framework.Messages(framework.ParseLog(proxy.Logs()[mark:]), "fault injection: failing reads changed")) == 0 {
				return fmt.Errorf("the daemon has not read %q yet", names)
			}
			return nil
		})
	}
	if err := os.WriteFile(reads, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir,
		ExtraArgs: []string{"--ipvs-sync-period", "2s", "--fault-inject-reads-file", reads}})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)
	const web = "10.96.0.10:80"
	nodePort := framework.NodeIP + ":30080"
	webLoad := framework.StartLoadEvery(t, client, framework.HTTP, web, 50*time.Millisecond)
	npLoad := framework.StartLoadEvery(t, client, framework.HTTP, nodePort, 50*time.Millisecond)
	health := framework.WatchHealthz(t, framework.HealthzAddr, 200*time.Millisecond)
	waitSent(t, webLoad, 10)

	t.Run("failed node address read", func(t *testing.T) {
		before := sortedKernelState(t)
		mark, fulls := len(proxy.Logs()), len(proxy.FullSyncs())
		setReads(proxy, "node-addresses")
		framework.Eventually(t, 60*time.Second, func() error {
			if n := len(framework.Messages(framework.ParseLog(proxy.Logs()[mark:]), "cannot list the node's addresses; keeping the last ones read")); n < 2 {
				return fmt.Errorf("%d full syncs with a failed address read, want 2", n)
			}
			return nil
		})
		for _, s := range proxy.FullSyncs()[fulls:] {
			if s.Incomplete() || s.Ops != 0 {
				t.Errorf("full sync while the address read fails: %s; want complete, nothing planned", s)
			}
		}
		after := sortedKernelState(t)
		for _, what := range []string{"ipvsadm -Sn", "ipset save", "kube-ipvs0", "iptables-save"} {
			if before[what] != after[what] {
				t.Errorf("%s changed while the address read failed:\n%s\nwas:\n%s", what, after[what], before[what])
			}
		}
		setReads(proxy, "")
	})

	t.Run("a scheduler the kernel lacks", func(t *testing.T) {
		restoreModules := withholdModule(t, "ip_vs_sh")
		mark, fulls := len(proxy.Logs()), len(proxy.FullSyncs())
		framework.WriteManifest(t, dir, "tenant.yaml", tenantService("sh"))
		framework.Eventually(t, 60*time.Second, func() error {
			if framework.CountSaying(framework.ParseLog(proxy.Logs()[mark:]), "a Service names a scheduler this node's kernel lacks") == 0 {
				return fmt.Errorf("the daemon has not probed sh yet")
			}
			if n := len(proxy.FullSyncs()) - fulls; n < 3 {
				return fmt.Errorf("%d full syncs since the tenant's Service, want 3", n)
			}
			return nil
		})
		for _, s := range proxy.FullSyncs()[fulls:] {
			if s.Incomplete() || s.Failed != 0 {
				t.Errorf("full sync with the tenant's Service: %s; want complete, no failure", s)
			}
		}
		if vs := expectRealServers(t, framework.IPVSServices(t), "TCP", "10.96.0.30:80", "10.244.1.2:8080"); vs != nil && vs.Scheduler != "rr" {
			t.Errorf("the tenant's Service has scheduler %s, want the default rr", vs.Scheduler)
		}
		status := framework.Run(t, os.Getenv(framework.EnvProxyBin), "status")
		if want := "this node's kernel has no scheduler \"sh\" (load it with `modprobe ip_vs_sh`)"; !strings.Contains(status, want) {
			t.Errorf("ipvs-proxy status does not say %q:\n%s", want, status)
		}
		m, err := framework.ScrapeMetrics(framework.MetricsAddr)
		if err != nil {
			t.Fatal(err)
		}
		if n := m["ipvsproxy_invalid_objects"]; n < 1 {
			t.Errorf("ipvsproxy_invalid_objects is %v, want at least 1", n)
		}
		restoreModules()
		framework.Eventually(t, 60*time.Second, func() error {
			vs := framework.FindVirtualServer(framework.IPVSServices(t), "TCP", "10.96.0.30:80")
			if vs == nil || vs.Scheduler != "sh" {
				return fmt.Errorf("the tenant's Service is %+v, want it on sh once the module is loaded", vs)
			}
			return nil
		})
		if spread := requests(t, client, framework.HTTP, "10.96.0.30:80", 3); len(spread) != 1 {
			t.Errorf("the tenant's Service after the module came back: %s", spread)
		}
	})

	for _, l := range []struct {
		name string
		load *framework.Load
	}{{web, webLoad}, {nodePort, npLoad}} {
		res := l.load.Stop()
		t.Logf("HTTP %s in a loop through both: %s", l.name, res)
		if res.Failed != 0 {
			t.Errorf("HTTP %s: %d of %d requests failed, want 0", l.name, res.Failed, res.Sent)
		}
	}
	samples := health.Stop()
	bad := 0
	for _, s := range samples {
		if s.Err != nil || s.Code != 200 {
			bad++
			t.Errorf("/healthz at %s: %s %v", s.At.Format("15:04:05.000"), s.Healthz, s.Err)
		}
	}
	t.Logf("/healthz answered %d times, %d of them not 200", len(samples), bad)
	if l, err := framework.GetLivez(framework.HealthzAddr); err != nil || l.Code != 200 {
		t.Errorf("/livez: %s %v", l, err)
	}
}

// withholdModule unloads a module and disables on-demand loading, as on a
// node without it; the returned function (also run at the test's end)
// loads the IPVS modules again and restores on-demand loading.
func withholdModule(t *testing.T, module string) (restore func()) {
	t.Helper()
	modprobe := framework.ReadSysctl(t, "kernel.modprobe")
	done := false
	restore = func() {
		if done {
			return
		}
		done = true
		framework.Sysctl(t, "kernel.modprobe", modprobe)
		framework.Run(t, "/usr/sbin/modprobe", append([]string{"-a"}, ipvsModules...)...)
	}
	t.Cleanup(restore)
	framework.Sysctl(t, "kernel.modprobe", noModprobe)
	framework.Run(t, "/usr/sbin/rmmod", module)
	return restore
}
