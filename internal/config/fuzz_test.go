package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// FuzzParse: no input makes the loader panic, and whatever it accepts is valid.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../cli/testdata/bad/cfg-*.yaml")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\nipvs: {scheduler: sh, syncPeriod: 5s}\nclusterCIDR: 10.0.0.0/8\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := Parse(data)
		if err != nil {
			return
		}
		if !state.ValidScheduler(cfg.IPVS.Scheduler) || cfg.MasqueradeBit < 0 || cfg.MasqueradeBit > 31 ||
			cfg.IPVS.SyncPeriod <= 0 || cfg.IPVS.MinSyncPeriod > cfg.IPVS.SyncPeriod {
			t.Fatalf("accepted an invalid configuration: %+v", cfg)
		}
	})
}
