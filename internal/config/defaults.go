package config

import (
	"time"

	logsapi "k8s.io/component-base/logs/api/v1"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// kube-proxy's defaults (pkg/proxy/apis/config/v1alpha1 in Kubernetes).
const (
	DefaultScheduler          = "rr"
	DefaultHealthzBindAddress = "0.0.0.0:10256"
	DefaultMetricsBindAddress = "127.0.0.1:10249"
	DefaultMasqueradeBit      = 14
	DefaultSyncPeriod         = 30 * time.Second
	DefaultConfigSyncPeriod   = 15 * time.Minute
	// DefaultOOMScoreAdj is kube-proxy's (qos.KubeProxyOOMScoreAdj).
	DefaultOOMScoreAdj = -999
)

// Default returns the configuration used when no file is given.
func Default() *Config {
	return &Config{
		DetectLocal:        DetectLocal{Mode: LocalModeClusterCIDR},
		MasqueradeBit:      DefaultMasqueradeBit,
		HealthzBindAddress: DefaultHealthzBindAddress,
		MetricsBindAddress: DefaultMetricsBindAddress,
		IPVS: IPVS{
			Scheduler:  DefaultScheduler,
			SyncPeriod: DefaultSyncPeriod,
			Timeouts:   state.Timeouts{},
		},
		Conntrack: Conntrack{
			MaxPerCore:            32 * 1024,
			Min:                   128 * 1024,
			TCPEstablishedTimeout: 24 * time.Hour,
			TCPCloseWaitTimeout:   time.Hour,
		},
		Limits:           Limits{VirtualServers: DefaultMaxVirtualServersPerService, RealServers: DefaultMaxRealServersPerService},
		NodePortRange:    DefaultNodePortRange,
		QPS:              5,
		Burst:            10,
		ContentType:      "application/vnd.kubernetes.protobuf",
		ConfigSyncPeriod: DefaultConfigSyncPeriod,
		RulesBackend:     state.BackendIPTables,
		Process: Process{
			Logging:     *logsapi.NewLoggingConfiguration(),
			OOMScoreAdj: DefaultOOMScoreAdj,
		},
	}
}
