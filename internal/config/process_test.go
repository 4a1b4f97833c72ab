package config

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"
)

const header = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n"

// TestProcessFields: the fields that configure the process are read, with
// kube-proxy's defaults, and no longer reported as ignored.
func TestProcessFields(t *testing.T) {
	cfg, rep, err := Parse([]byte(header + `logging: {format: json, verbosity: 2, vmodule: [{filePattern: sync, verbosity: 4}]}
featureGates: {LoggingAlphaOptions: true}
bindAddress: 192.0.2.7
enableProfiling: true
oomScoreAdj: -500
clientConnection: {acceptContentTypes: "application/json"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Infos) != 0 || len(rep.Warnings) != 0 {
		t.Errorf("honoured fields reported as ignored or unknown: %v %v", rep.Infos, rep.Warnings)
	}
	l := cfg.Logging
	if l.Format != "json" || l.Verbosity != 2 || len(l.VModule) != 1 || l.VModule[0].FilePattern != "sync" || l.FlushFrequency.Duration.Duration == 0 {
		t.Errorf("logging: %+v", l)
	}
	if !cfg.FeatureGates["LoggingAlphaOptions"] || cfg.BindAddress != netip.MustParseAddr("192.0.2.7") || !cfg.EnableProfiling ||
		cfg.OOMScoreAdj != -500 || cfg.AcceptContentTypes != "application/json" {
		t.Errorf("process fields: %+v", cfg.Process)
	}

	def, _, err := Parse([]byte(header + "bindAddress: 0.0.0.0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if def.BindAddress.IsValid() || def.OOMScoreAdj != -999 || def.Logging.Format != "text" {
		t.Errorf("defaults: bindAddress %v (0.0.0.0 is no override), oomScoreAdj %d (kube-proxy: -999), format %q",
			def.BindAddress, def.OOMScoreAdj, def.Logging.Format)
	}
}

func TestPrimaryAddressesBindAddress(t *testing.T) {
	v4, v6 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")
	c := Default()
	if got := c.PrimaryAddresses([]netip.Addr{v4, v6}); !slices.Equal(got, []netip.Addr{v4, v6}) {
		t.Errorf("no bindAddress: %v", got)
	}
	c.BindAddress = netip.MustParseAddr("10.0.0.9")
	if got := c.PrimaryAddresses([]netip.Addr{v4, v6}); !slices.Equal(got, []netip.Addr{c.BindAddress, v6}) {
		t.Errorf("bindAddress replaces the node's address of its family: %v", got)
	}
}

func TestConntrackMax(t *testing.T) {
	for _, c := range []struct {
		perCore, min int32
		cpus, want   int
	}{{32768, 131072, 2, 131072}, {32768, 131072, 8, 262144}, {0, 131072, 8, 0}, {32768, 0, 0, 0}} {
		if got := (Conntrack{MaxPerCore: c.perCore, Min: c.min}).Max(c.cpus); got != c.want {
			t.Errorf("maxPerCore %d, min %d, %d CPUs: %d, want %d", c.perCore, c.min, c.cpus, got, c.want)
		}
	}
}

// TestV1alpha1RoundTrip: the KubeProxyConfiguration served at /configz and
// written by --write-config-to reads back into the same configuration.
func TestV1alpha1RoundTrip(t *testing.T) {
	cfg, _, err := Parse([]byte(header + `ipvs: {scheduler: lc, syncPeriod: 10s, minSyncPeriod: 1s, excludeCIDRs: [192.0.2.0/24], strictARP: true, tcpTimeout: 5m}
clusterCIDR: 10.244.0.0/16,fd00:10:244::/56
nodePortAddresses: [primary]
detectLocalMode: InterfaceNamePrefix
detectLocal: {interfaceNamePrefix: veth}
iptables: {masqueradeAll: true, masqueradeBit: 13}
conntrack: {maxPerCore: 0, tcpBeLiberal: true, udpTimeout: 30s}
bindAddress: 10.0.0.9
logging: {format: json, verbosity: 3}
clientConnection: {kubeconfig: /k, qps: 7, burst: 9}
`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := yaml.Marshal(cfg.V1alpha1())
	if err != nil {
		t.Fatal(err)
	}
	back, rep, err := Parse(b)
	if err != nil || len(rep.Warnings) != 0 {
		t.Fatalf("%v %v\n%s", err, rep.Warnings, b)
	}
	if !reflect.DeepEqual(back, cfg) {
		t.Errorf("round trip differs:\n%+v\n%+v\n%s", back, cfg, b)
	}
}

func TestNeedRestart(t *testing.T) {
	base := Default()
	live := *base
	live.IPVS.Scheduler = "lc"
	live.IPVS.StrictARP = true
	live.Logging.Verbosity = 4
	if f := NeedRestart(base, &live); len(f) != 0 {
		t.Errorf("scheduler, strictARP and verbosity apply in place, got restart for %v", f)
	}
	restart := *base
	restart.MetricsBindAddress = "0.0.0.0:10249"
	restart.Kubeconfig = "/other"
	restart.Logging.Format = "json"
	if f := NeedRestart(base, &restart); !slices.Equal(f, []string{"metricsBindAddress", "clientConnection.kubeconfig", "logging.format"}) {
		t.Errorf("NeedRestart: %v", f)
	}
}
