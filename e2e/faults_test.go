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
	"github.com/ipvs-proxy/ipvs-proxy/internal/syncevent"
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
//   - the failures are the Services' own: each is recorded in the sync
//     events (and logged) with the Service and what was being done ("add real server 10.244.1.2:8080 to TCP
//     10.96.1.7:80 (default/svc-07:http): injected fault"), retried on its
//     own with a doubling backoff (1 s, 2 s, ...), counted in
//     ipvsproxy_kernel_errors_total and ipvsproxy_failing_services; /healthz
//     stays 200 throughout (one tenant's Service the kernel refuses must not
//     make load balancers drop every node);
//   - a failure of the node's own objects is the node's: with every write
//     failing and a sysctl of ours changed by hand, the full sync that would
//     repair it fails; /healthz turns 503 once that has waited longer than
//     the grace (2 × 2 s), not before, while /livez stays 200 (a restart
//     would not help); the full syncs are retried with a doubling backoff;
//   - once the rate is back to 0, the daemon converges: /healthz is 200
//     again, and ipvsadm -Sn, ipset save, the kube-ipvs0 addresses,
//     iptables-save and the nftables table are what a clean start (after
//     `ipvs-proxy cleanup`) on the same manifests programs;
//   - the Service programmed before the faults lost no request: what is in
//     the kernel is never torn down by failures.
func TestKernelFaults(t *testing.T) { framework.EachRulesBackend(t, kernelFaults) }

// kernelFaults is TestKernelFaults with one rules backend (framework.CurrentRulesBackend).
func kernelFaults(t *testing.T) {
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
	// setRate writes the fault rate and waits until the daemon has read it
	// (its ipvsproxy_fault_injection_rate says so).
	setRate := func(rate float64) {
		t.Helper()
		if err := os.WriteFile(rateFile, []byte(fmt.Sprintln(rate)), 0o644); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 5*time.Second, func() error {
			m, err := framework.ScrapeMetrics(framework.MetricsAddr)
			if err != nil {
				return err
			}
			if got, ok := m["ipvsproxy_fault_injection_rate"]; !ok || got != rate {
				return fmt.Errorf("the daemon applies fault rate %v (served: %v), not %v yet", got, ok, rate)
			}
			return nil
		})
	}
	const web = "10.96.0.10:80"
	load := framework.StartLoadEvery(t, client, framework.HTTP, web, 50*time.Millisecond)
	health := framework.WatchHealthz(t, framework.HealthzAddr, 200*time.Millisecond)
	waitSent(t, load, 10)

	setRate(0.5)
	syncStart := len(proxy.Syncs())
	framework.WriteManifest(t, dir, "many.yaml", faultServicesYAML())
	framework.Eventually(t, 60*time.Second, func() error {
		byService := map[string]int{}
		for _, f := range serviceFailures(proxy.Syncs()[syncStart:]) {
			byService[f.Service]++
		}
		for _, n := range byService {
			if n >= 3 {
				return nil
			}
		}
		return fmt.Errorf("no Service retried three times yet (%d failing)", len(byService))
	})
	m, err := framework.ScrapeMetrics(framework.MetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	if n := m["ipvsproxy_failing_services"]; n < 1 {
		t.Errorf("ipvsproxy_failing_services is %v while Services fail, want at least 1", n)
	}
	serviceFaults := time.Now()
	for _, s := range health.Samples() {
		if s.Err != nil || s.Code != 200 {
			t.Errorf("/healthz at %s, while only Services fail: %s %v", s.At.Format("15:04:05.000"), s.Healthz, s.Err)
		}
	}

	// the node's own objects: every write fails, and a sysctl of ours is changed
	setRate(1)
	nodeStart := len(proxy.Syncs())
	framework.Sysctl(t, "net.ipv4.vs.expire_nodest_conn", "0")
	changed := time.Now()
	var unhealthy time.Time
	framework.Eventually(t, 60*time.Second, func() error {
		for _, s := range health.Samples() {
			if s.Err == nil && s.Code == 503 && s.At.After(changed) {
				unhealthy = s.At
				break
			}
		}
		n := len(syncRetries(proxy.Syncs()[nodeStart:]))
		if unhealthy.IsZero() || n < 2 {
			return fmt.Errorf("/healthz turned 503: %v; %d retries of the full sync", !unhealthy.IsZero(), n)
		}
		return nil
	})
	t.Logf("/healthz turned 503 %.1fs after the node's sysctl changed (grace %s)", unhealthy.Sub(changed).Seconds(), grace)
	if unhealthy.Sub(changed) < grace {
		t.Errorf("/healthz turned 503 %.1fs after the change, before the grace of %s", unhealthy.Sub(changed).Seconds(), grace)
	}
	for _, s := range health.Samples() {
		if s.At.After(serviceFaults) && (s.Err != nil || (s.Code != 200 && s.At.Before(changed.Add(grace)))) {
			t.Errorf("/healthz at %s (%.1fs after the change): %s %v", s.At.Format("15:04:05.000"), s.At.Sub(changed).Seconds(), s.Healthz, s.Err)
		}
	}
	if l, err := framework.GetLivez(framework.HealthzAddr); err != nil || l.Code != 200 {
		t.Errorf("/livez while the node is unhealthy: %s %v; want 200 (a restart would not help)", l, err)
	}
	backoff := syncRetries(proxy.Syncs()[nodeStart:])
	t.Logf("full syncs retried after %v", backoff)
	if len(backoff) < 2 || !slices.Equal(backoff[:2], []time.Duration{time.Second, 2 * time.Second}) {
		t.Errorf("full syncs retried after %v, want a backoff doubling from 1s", backoff)
	}

	setRate(0)
	cleared := time.Now()
	framework.Eventually(t, 60*time.Second, func() error {
		h, err := framework.GetHealthz(framework.HealthzAddr)
		if err != nil {
			return err
		}
		if h.Code != 200 {
			return fmt.Errorf("/healthz: %s", h)
		}
		m, err := framework.ScrapeMetrics(framework.MetricsAddr)
		if err != nil {
			return err
		}
		if n := m["ipvsproxy_failing_services"]; n != 0 {
			return fmt.Errorf("%v Services still failing", n)
		}
		for _, s := range proxy.Syncs()[syncStart:] {
			if s.Type == "full" && !s.Incomplete() && s.Failed == 0 && s.Ops == 0 {
				return nil
			}
		}
		return fmt.Errorf("no clean full sync since the faults began")
	})
	t.Logf("converged %.1fs after the fault rate went back to 0", time.Since(cleared).Seconds())
	res := load.Stop()
	t.Logf("HTTP %s in a loop through the faults: %s", web, res)
	if res.Failed != 0 {
		t.Errorf("HTTP %s, programmed before the faults: %d of %d requests failed, want 0", web, res.Failed, res.Sent)
	}

	var injected []string
	perService := map[string][]time.Duration{}
	for _, f := range serviceFailures(proxy.Syncs()[syncStart:nodeStart]) {
		for _, e := range f.Errors {
			if strings.HasSuffix(e, ": injected fault") {
				injected = append(injected, e)
			}
		}
		perService[f.Service] = append(perService[f.Service], f.RetryAfter)
	}
	t.Logf("%d Services failed, %d failures recorded, e.g.:\n  %s", len(perService), len(injected),
		strings.Join(injected[:min(len(injected), 4)], "\n  "))
	described := regexp.MustCompile(`^(add virtual server TCP 10\.96\.1\.\d+:80 \(default/svc-\d\d:http\)|` +
		`add real server 10\.244\.[12]\.2:8080 to TCP 10\.96\.1\.\d+:80 \(default/svc-\d\d:http\)|` +
		`bind 10\.96\.1\.\d+/32 to kube-ipvs0|add .* to ipset KUBE-[A-Z-]+|` +
		`nftables transaction on table ip ipvs-proxy \(add .* to set [a-z-]+ of table ip ipvs-proxy.*\)): injected fault$`)
	for _, e := range injected {
		if !described.MatchString(e) {
			t.Errorf("failed operation recorded as %q: want what was being done, on which Service", e)
		}
	}
	if len(injected) == 0 {
		t.Errorf("no injected failure was recorded")
	}
	doubled := false
	for svc, waits := range perService {
		if len(waits) >= 2 && waits[0] == time.Second && waits[1] == 2*time.Second {
			doubled = true
			t.Logf("%s retried after %v", svc, waits)
			break
		}
	}
	if !doubled {
		t.Errorf("no Service was retried after 1s then 2s: %v", perService)
	}
	m, err = framework.ScrapeMetrics(framework.MetricsAddr)
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
	for _, what := range []string{"ipvsadm -Sn", "ipset save", "kube-ipvs0", "iptables-save", "nft list table ip ipvs-proxy"} {
		if converged[what] != fresh[what] {
			t.Errorf("%s after the faults differs from a clean start's:\n after the faults:\n%s\nclean start:\n%s", what, converged[what], fresh[what])
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
	// nft lists a set's elements in no fixed order, several on a line
	out["nft list table ip ipvs-proxy"] = strings.ReplaceAll(out["nft list table ip ipvs-proxy"], ",", "\n")
	for _, k := range []string{"ipvsadm -Sn", "ipset save", "nft list table ip ipvs-proxy"} {
		lines := strings.Split(strings.TrimSpace(out[k]), "\n")
		for i := range lines {
			lines[i] = strings.TrimSpace(lines[i])
		}
		slices.Sort(lines)
		out[k] = strings.Join(lines, "\n")
	}
	addrs := framework.Addrs(t, "kube-ipvs0")
	slices.Sort(addrs)
	out["kube-ipvs0"] = strings.Join(addrs, "\n")
	return out
}

// serviceFailures returns the Services' failures the syncs recorded, in order.
func serviceFailures(syncs []framework.Sync) []syncevent.ServiceFailure {
	var out []syncevent.ServiceFailure
	for _, s := range syncs {
		out = append(out, s.Failing...)
	}
	return out
}

// syncRetries returns the waits before the retries of the failed syncs.
func syncRetries(syncs []framework.Sync) []time.Duration {
	var after []time.Duration
	for _, s := range syncs {
		if s.RetryAfter > 0 {
			after = append(after, s.RetryAfter)
		}
	}
	return after
}
