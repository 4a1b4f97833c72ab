package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseDefaultsLikeKubeProxy(t *testing.T) {
	cfg, rep, err := Parse([]byte("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) != 0 {
		t.Errorf("warnings: %v", rep.Warnings)
	}
	if cfg.IPVS.Scheduler != "rr" || cfg.IPVS.SyncPeriod != 30*time.Second || cfg.MasqueradeBit != 14 ||
		cfg.HealthzBindAddress != "0.0.0.0:10256" || cfg.MetricsBindAddress != "127.0.0.1:10249" || cfg.DetectLocal.Mode != LocalModeClusterCIDR {
		t.Errorf("defaults differ from kube-proxy's: %+v", cfg)
	}
	if cfg.MasqueradeMark() != 0x4000 {
		t.Errorf("mark %#x", cfg.MasqueradeMark())
	}
}

func TestParseKubeadmConfig(t *testing.T) {
	// what kubeadm writes into the kube-proxy ConfigMap, switched to ipvs
	conf := `apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 0
clusterCIDR: 10.244.0.0/16,fd00:10:244::/56
configSyncPeriod: 0s
conntrack:
  maxPerCore: null
  min: null
  tcpCloseWaitTimeout: null
  tcpEstablishedTimeout: null
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: ""
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
  scheduler: "lc"
  strictARP: true
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
  verbosity: 0
metricsBindAddress: ""
mode: ipvs
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
	cfg, rep, err := Parse([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) != 0 {
		t.Errorf("a kubeadm config gave warnings: %v", rep.Warnings)
	}
	if len(rep.Infos) != 1 || !strings.Contains(rep.Infos[0], "winkernel.enableDSR") || !strings.Contains(rep.Infos[0], "iptables.syncPeriod") {
		t.Errorf("want one info line listing the other modes' fields, got %v", rep.Infos)
	}
	if cfg.IPVS.Scheduler != "lc" || !cfg.IPVS.StrictARP || len(cfg.ClusterCIDRs) != 2 || cfg.Kubeconfig != "/var/lib/kube-proxy/kubeconfig.conf" {
		t.Errorf("fields not read: %+v", cfg)
	}
}

func TestUnknownFieldsWarn(t *testing.T) {
	_, rep, err := Parse([]byte("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\nipvs: {schedular: lc}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "schedular") {
		t.Errorf("want a warning naming the unknown field, got %v", rep.Warnings)
	}
}

func TestRulesBackendField(t *testing.T) {
	head := "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n"
	cfg, rep, err := Parse([]byte(head + "ipvsProxy:\n  rulesBackend: nftables\n"))
	if err != nil || cfg.RulesBackend != "nftables" || len(rep.Warnings) != 0 {
		t.Fatalf("rulesBackend nftables: %v, %+v, %v", cfg, rep, err)
	}
	cfg, _, err = Parse([]byte(head))
	if err != nil || cfg.RulesBackend != "iptables" {
		t.Fatalf("default backend: %v, %v", cfg.RulesBackend, err)
	}
	for _, bad := range []string{"ipvsProxy:\n  rulesBackend: ebpf\n", "ipvsProxy: 3\n"} {
		if _, _, err := Parse([]byte(head + bad)); err == nil || !strings.Contains(err.Error(), "ipvsProxy") {
			t.Errorf("%q: err %v, want one naming ipvsProxy", bad, err)
		}
	}
}
