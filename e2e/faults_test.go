package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// faultServices is how many Services TestKernelFaults adds while half the
// kernel writes fail: with six operations each (address, virtual server, two
// real servers, two set members), a sync almost never gets through whole.
const faultServices = 20

// faultServicesYAML returns the Services svc-01... at 10.96.1.1... (port 80)
// with the two backends as endpoints.
func faultServicesYAML() string {
	var docs []string
	for i := 1; i <= faultServices; i++ {
		name := fmt.Sprintf("svc-%02d", i)
		docs = append(docs, fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: %s, namespace: default}
spec:
  clusterIP: 10.96.1.%d
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
`, name, i), sliceYAML(name, name+"-1", []string{"http=8080/TCP"}, onNode("node-1", "10.244.1.2", "10.244.2.2")))
	}
	return joinYAML(docs...)
}

// TestKernelFaults makes half of the daemon's kernel writes fail
// (--fault-inject-rate-file, read every second) while 20 Services are added,
// with --ipvs-sync-period 2s, so a change may wait 4 s before the node is
// unhealthy. A client loop runs against a Service programmed before:
//   - every failed write is logged with what was being done ("add real
//     server 10.244.1.2:8080 to TCP 10.96.1.7:80 (default/svc-07:http):
//     injected fault"), and counted in ipvsproxy_kernel_errors_total;
//   - the sync is retried with a doubling backoff (1 s, 2 s, ...);
//   - /healthz turns 503 only once the change has waited longer than the
//     grace (2 × 2 s), not before; the faults go on until it has and two
//     retries have failed;
//   - once the rate is back to 0, the daemon converges: /healthz is 200
//     again, and ipvsadm -Sn, ipset save, the kube-ipvs0 addresses and
//     iptables-save are what a clean start (after `ipvs-proxy cleanup`) on
//     the same manifests programs;
//   - the Service programmed before the faults lost no request: what is in
//     the kernel is never torn down by failures.
func TestKernelFaults(t *testing.T) {
	framework.ResetKernel(t)
	framework.NewBackend(t, "pod-a", "10.244.1.2")
	framework.NewBackend(t, "pod-b", "10.244.2.2")
	client := framework.Client{NS: framework.NewClientNS(t, "client", "10.250.0.2").Name, Timeout: 5 * time.Second}
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "web.yaml", joinYAML(webService("10.96.0.10", ""), webSlice("web-1", "10.244.1.2", "10.244.2.2")))
	rateFile := filepath.Join(t.TempDir(), "fault-rate")
	if err := os.WriteFile(rateFile, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const grace = 4 * time.Second // 2 × --ipvs-sync-period
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir,
		ExtraArgs: []string{"--ipvs-sync-period", "2s", "--fault-inject-rate-file", rateFile}})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)
	// setRate writes the fault rate and waits until the daemon has read it.
	setRate := func(rate string) {
		t.Helper()
		mark := len(proxy.Logs())
		if err := os.WriteFile(rateFile, []byte(rate+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 5*time.Second, func() error {
			for _, e := range framework.Messages(proxy.Logs()[mark:], "fault injection rate changed") {
				if e.Field("rate") == rate {
					return nil
				}
			}
			return fmt.Errorf("the daemon has not read fault rate %s yet", rate)
		})
	}
	const web = "10.96.0.10:80"
	load := framework.StartLoadEvery(t, client, framework.HTTP, web, 50*time.Millisecond)
	health := framework.WatchHealthz(t, framework.HealthzAddr, 200*time.Millisecond)
	waitSent(t, load, 10)

	setRate("0.5")
	logStart, syncStart := len(proxy.Logs()), len(proxy.Syncs())
	framework.WriteManifest(t, dir, "many.yaml", faultServicesYAML())
	changed := time.Now()
	const retrying = "sync failed; retrying"
	var unhealthy time.Time
	framework.Eventually(t, 60*time.Second, func() error {
		for _, s := range health.Samples() {
			if s.Err == nil && s.Code == 503 {
				unhealthy = s.At
				break
			}
		}
		n := len(framework.Messages(proxy.Logs()[logStart:], retrying))
		if unhealthy.IsZero() || n < 2 {
			return fmt.Errorf("/healthz turned 503: %v; %d retries", !unhealthy.IsZero(), n)
		}
		return nil
	})
	t.Logf("/healthz turned 503 %.1fs after the change (grace %s)", unhealthy.Sub(changed).Seconds(), grace)
	if unhealthy.Sub(changed) < grace {
		t.Errorf("/healthz turned 503 %.1fs after the change, before the grace of %s", unhealthy.Sub(changed).Seconds(), grace)
	}
	for _, s := range health.Samples() {
		if s.Err != nil || (s.Code != 200 && s.At.Before(changed.Add(grace))) {
			t.Errorf("/healthz at %s (%.1fs after the change): %s %v", s.At.Format("15:04:05.000"), s.At.Sub(changed).Seconds(), s.Healthz, s.Err)
		}
	}

	setRate("0")
	cleared := time.Now()
	framework.Eventually(t, 60*time.Second, func() error {
		h, err := framework.GetHealthz(framework.HealthzAddr)
		if err != nil {
			return err
		}
		if h.Code != 200 {
			return fmt.Errorf("/healthz: %s", h)
		}
		for _, s := range proxy.Syncs()[syncStart:] {
			if s.Type == "full" && !s.Incomplete {
				return nil
			}
		}
		return fmt.Errorf("no complete full sync since the faults began")
	})
	t.Logf("converged %.1fs after the fault rate went back to 0", time.Since(cleared).Seconds())
	res := load.Stop()
	t.Logf("HTTP %s in a loop through the faults: %s", web, res)
	if res.Failed != 0 {
		t.Errorf("HTTP %s, programmed before the faults: %d of %d requests failed, want 0", web, res.Failed, res.Sent)
	}

	faultLog := proxy.Logs()[logStart:]
	failures := framework.Messages(faultLog, "kernel operation failed")
	var injected []string
	for _, f := range failures {
		if err := f.Field("err"); strings.HasSuffix(err, ": injected fault") {
			injected = append(injected, err)
		}
	}
	t.Logf("%d kernel operations logged as failed, %d of them injected, e.g.:\n  %s", len(failures), len(injected),
		strings.Join(injected[:min(len(injected), 4)], "\n  "))
	described := regexp.MustCompile(`^(add virtual server TCP 10\.96\.1\.\d+:80 \(default/svc-\d\d:http\)|` +
		`add real server 10\.244\.[12]\.2:8080 to TCP 10\.96\.1\.\d+:80 \(default/svc-\d\d:http\)|` +
		`bind 10\.96\.1\.\d+/32 to kube-ipvs0|add .* to ipset KUBE-[A-Z-]+): injected fault$`)
	for _, e := range injected {
		if !described.MatchString(e) {
			t.Errorf("failed operation logged as %q: want what was being done, on which Service", e)
		}
	}
	if len(injected) == 0 {
		t.Errorf("no injected failure was logged")
	}
	var backoff []string
	for _, r := range framework.Messages(faultLog, retrying) {
		backoff = append(backoff, r.Field("after"))
	}
	t.Logf("retries after %s", strings.Join(backoff, ", "))
	if len(backoff) < 2 || !slices.Equal(backoff[:2], []string{"1s", "2s"}) {
		t.Errorf("retries after %v, want a backoff doubling from 1s", backoff)
	}
	m, err := framework.ScrapeMetrics(framework.MetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	var kernelErrors float64
	for series, v := range m {
		if strings.HasPrefix(series, "ipvsproxy_kernel_errors_total{") {
			kernelErrors += v
		}
	}
	if kernelErrors < float64(len(injected)) {
		t.Errorf("ipvsproxy_kernel_errors_total sums to %v, want at least the %d failures logged", kernelErrors, len(injected))
	}
	t.Logf("ipvsproxy_kernel_errors_total: %v; failed full syncs: %v", kernelErrors, m[`ipvsproxy_syncs_total{result="error",type="full"}`])

	converged := sortedKernelState(t)
	if err := proxy.Stop(); err != nil {
		t.Fatalf("stop ipvs-proxy: %v", err)
	}
	framework.Run(t, os.Getenv(framework.EnvProxyBin), "cleanup")
	clean := framework.StartProxy(t, framework.Options{ManifestDir: dir})
	clean.WaitFullSyncs(t, 1, 30*time.Second)
	fresh := sortedKernelState(t)
	for _, what := range []string{"ipvsadm -Sn", "ipset save", "kube-ipvs0", "iptables-save"} {
		if converged[what] != fresh[what] {
			t.Errorf("%s after the faults differs from a clean start's:\nafter the faults:\n%s\nclean start:\n%s", what, converged[what], fresh[what])
		}
	}
	t.Logf("after the faults the kernel holds what a clean start programs: %d virtual servers", len(framework.IPVSServices(t)))
}

// sortedKernelState is kernelSnapshot in an order-free form (lines sorted,
// as two runs may create the same objects in another order), with the
// kube-ipvs0 addresses.
func sortedKernelState(t testing.TB) map[string]string {
	t.Helper()
	out := kernelSnapshot(t)
	for _, k := range []string{"ipvsadm -Sn", "ipset save"} {
		lines := strings.Split(strings.TrimSpace(out[k]), "\n")
		slices.Sort(lines)
		out[k] = strings.Join(lines, "\n")
	}
	addrs := framework.Addrs(t, "kube-ipvs0")
	slices.Sort(addrs)
	out["kube-ipvs0"] = strings.Join(addrs, "\n")
	return out
}
