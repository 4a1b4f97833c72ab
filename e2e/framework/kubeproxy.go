package framework

import (
	"os"
	"path/filepath"
	"testing"
)

// EnvKubeProxyBin is the path of the upstream kube-proxy binary that
// StartKubeProxy runs (scripts/e2e.sh builds it with scripts/k8s/build.sh);
// scenarios that need it skip without it.
const EnvKubeProxyBin = "IPVS_PROXY_KUBE_PROXY_BIN"

// KubeProxyBin returns the kube-proxy binary's path, or skips the test when
// there is none.
func KubeProxyBin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(EnvKubeProxyBin)
	if bin == "" {
		t.Skipf("%s is not set: no kube-proxy binary (run with scripts/e2e.sh)", EnvKubeProxyBin)
	}
	return bin
}

// StartKubeProxy runs the real kube-proxy with
//
//	--config FILE --logging-format=json [EXTRA...]
//
// as a Proxy: Stop sends SIGTERM (kube-proxy exits without cleaning up, as
// in a DaemonSet rollout), Kill SIGKILL, Start starts it again. Its log is
// kube-proxy.log in the test's artifacts. The sync helpers (Syncs,
// WaitFullSyncs) read ipvs-proxy's log lines and do not apply; wait on
// kube-proxy's metrics (KubeProxySyncs) instead.
func StartKubeProxy(t testing.TB, configFile string, extra ...string) *Proxy {
	t.Helper()
	bin := KubeProxyBin(t)
	argv := append([]string{"--config", configFile, "--logging-format=json"}, extra...)
	p := &Proxy{t: t, bin: bin, argv: argv, logPath: filepath.Join(artifactDir(t), "kube-proxy.log")}
	if err := p.start(); err != nil {
		t.Fatalf("start kube-proxy: %v", err)
	}
	t.Cleanup(func() {
		_ = p.Stop()
		if t.Failed() {
			t.Logf("kube-proxy log (%s), last lines:\n%s", p.logPath, indent(tail(p.Logs(), 40)))
		}
	})
	return p
}

// KubeProxySyncs returns how many syncs each of kube-proxy's per-family
// proxiers has finished ("IPv4", "IPv6"), from its
// kubeproxy_sync_proxy_rules_duration_seconds histogram at MetricsAddr; nil
// when kube-proxy does not answer yet.
func KubeProxySyncs() map[string]int {
	m, err := ScrapeMetrics(MetricsAddr)
	if err != nil {
		return nil
	}
	out := map[string]int{}
	for _, family := range []string{"IPv4", "IPv6"} {
		if n, ok := m[`kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="`+family+`"}`]; ok {
			out[family] = int(n)
		}
	}
	return out
}
