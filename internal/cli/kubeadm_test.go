package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/apiserver"
)

// kubeadmConfig is the config.conf kubeadm writes into the kube-proxy
// ConfigMap (kubeadm 1.34, `kubectl -n kube-system get cm kube-proxy`),
// with mode ipvs, the test API server's kubeconfig and free ports.
const kubeadmConfig = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: %s
  qps: 0
clusterCIDR: 10.244.0.0/16
configSyncPeriod: 0s
conntrack:
  maxPerCore: null
  min: null
  tcpBeLiberal: false
  tcpCloseWaitTimeout: null
  tcpEstablishedTimeout: null
  udpStreamTimeout: 0s
  udpTimeout: 0s
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: %s
hostnameOverride: ""
iptables:
  localhostNodePorts: null
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: false
  syncPeriod: 0s
  tcpFinTimeout: 0s
  tcpTimeout: 0s
  udpTimeout: 0s
kind: KubeProxyConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0
metricsBindAddress: %s
mode: ipvs
nftables:
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
nodePortAddresses: null
oomScoreAdj: null
portRange: ""
showHiddenMetricsForVersion: ""
winkernel:
  enableDSR: false
  forwardHealthCheckVip: false
  networkName: ""
  rootHnsEndpointName: ""
  sourceVip: ""
`

// TestKubeadmDaemonSetArgs runs the container arguments of a kubeadm
// kube-proxy DaemonSet (--config, --hostname-override) with
// --logging-format=json --v=2, unchanged, against a real API server (over a
// fake kernel): the daemon programs the API server's own Service, and every
// line it writes is kube-proxy's JSON, client-go's included (the reflector's
// "Caches populated" at -v 2).
func TestKubeadmDaemonSetArgs(t *testing.T) {
	srv := apiserver.StartForTest(t, apiserver.Options{})
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig.conf")
	if err := srv.WriteKubeconfig(kubeconfig, ""); err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(srv.RESTConfig())
	if _, err := client.CoreV1().Nodes().Create(t.Context(), &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "config.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(kubeadmConfig, kubeconfig, freeAddr(t), freeAddr(t))), 0o644); err != nil {
		t.Fatal(err)
	}

	fk := fake.New(netip.MustParseAddr("10.0.0.1"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := &app{
		openKernel: func(*zap.Logger, iptables.Backend, state.RulesBackend) (kernel.Kernel, func(), error) {
			return fk.Interfaces(), func() {}, nil
		},
		signals: func() (context.Context, context.CancelFunc) { return ctx, cancel },
	}
	t.Cleanup(func() { klog.Flush(); _ = logsapi.ResetForTest(nil) })
	out := &syncBuffer{}
	code := make(chan int, 1)
	// the DaemonSet's `command`, less the binary: what kubeadm passes, plus the two logging flags
	go func() {
		code <- a.main([]string{"--config=" + conf, "--hostname-override=node-1", "--logging-format=json", "--v=2"}, io.Discard, out)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(fk.IPVS.Save(), "-A -t 10.96.0.1:443 -s rr") {
		select {
		case c := <-code:
			t.Fatalf("the daemon exited with %d:\n%s", c, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("default/kubernetes not programmed after 30s:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if c := <-code; c != 0 {
		t.Fatalf("exit %d:\n%s", c, out)
	}
	klog.Flush()

	var ours, clientGo, started bool
	for i, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %d is not JSON: %q", i+1, line)
		}
		caller, _ := e["caller"].(string)
		switch {
		case e["msg"] == "Caches populated" && e["v"] == 2.0 && strings.HasPrefix(caller, "cache/reflector.go"):
			clientGo = true
		case e["msg"] == "synced" && e["logger"] == "proxier" && e["type"] == "full":
			ours = true
		case e["msg"] == "ipvs-proxy started" && e["node"] == "node-1":
			started = true
		}
	}
	if !clientGo || !ours || !started {
		t.Errorf("client-go's line %v, the proxier's %v, the startup line %v:\n%s", clientGo, ours, started, out)
	}
}
