// Package metrics defines ipvs-proxy's Prometheus metrics: kube-proxy's names,
// labels and buckets for what kube-proxy also measures, ipvsproxy_* for the
// rest. The Go and process collectors and client-go's rest_client_* series
// (component-base's adapter) live in component-base's legacy registry, as in
// kube-proxy; Gatherer serves both registries.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/component-base/metrics/legacyregistry"
	_ "k8s.io/component-base/metrics/prometheus/restclient" // client-go's rest_client_* metrics
)

// Metrics holds every metric; a nil *Metrics records nothing.
type Metrics struct {
	Registry *prometheus.Registry

	// The kubeproxy_sync_* timings carry kube-proxy's ip_family label (1.33+):
	// one sync of ipvs-proxy covers every family the node serves, and is
	// recorded for each (SetFamilies).
	SyncDuration        FamilyHistogram // kubeproxy_sync_proxy_rules_duration_seconds
	FullSyncDuration    FamilyHistogram
	PartialSyncDuration FamilyHistogram
	NetworkProgramming  FamilyHistogram // kubeproxy_network_programming_duration_seconds
	LastSync            FamilyGauge     // kubeproxy_sync_proxy_rules_last_timestamp_seconds
	LastQueued          FamilyGauge
	// NoLocalEndpoints{traffic_policy,ip_family}: Services with a Local
	// traffic policy that have endpoints, but none on this node.
	NoLocalEndpoints *prometheus.GaugeVec
	// HealthzTotal and LivezTotal{code} count the answers of /healthz and /livez.
	HealthzTotal, LivezTotal *prometheus.CounterVec
	EndpointChanges          prometheus.Counter
	EndpointChangesPending   prometheus.Gauge
	ServiceChanges           prometheus.Counter
	ServiceChangesPending    prometheus.Gauge

	OpsApplied   *prometheus.CounterVec // ipvsproxy_ops_applied_total{op}
	KernelErrors *prometheus.CounterVec // ipvsproxy_kernel_errors_total{op}
	Syncs        *prometheus.CounterVec // ipvsproxy_syncs_total{type,result}
	InvalidObjs  prometheus.Gauge
	// FailingServices is ipvsproxy_failing_services: Services whose kernel
	// operations failed and are being retried on their own.
	FailingServices prometheus.Gauge
	VirtualServer   prometheus.Gauge
	RealServers     prometheus.Gauge
	// ConfigReloads{result}: changes of the config file: applied (in
	// place), restart (a field that needs one changed), invalid (kept the
	// running configuration).
	ConfigReloads *prometheus.CounterVec
	// ConfigValid is 1 while the config file on disk is valid (or none is
	// used), 0 while it holds a change that could not be read (the running
	// configuration is kept).
	ConfigValid prometheus.Gauge

	families *families
}

// New creates the metrics in a fresh registry.
func New() *Metrics {
	fam := &families{}
	syncBuckets := prometheus.ExponentialBuckets(0.001, 2, 15)
	histogram := func(name, help string, buckets []float64) FamilyHistogram {
		return FamilyHistogram{vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "kubeproxy", Name: name, Help: help, Buckets: buckets}, []string{"ip_family"}), fam: fam}
	}
	gauge := func(name, help string) FamilyGauge {
		return FamilyGauge{vec: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "kubeproxy", Name: name, Help: help},
			[]string{"ip_family"}), fam: fam}
	}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		families: fam,
		SyncDuration: histogram("sync_proxy_rules_duration_seconds",
			"How long a sync took, from the start to the last kernel acknowledgement.", syncBuckets),
		FullSyncDuration: histogram("sync_full_proxy_rules_duration_seconds",
			"How long a full sync (dump, diff of everything, apply) took.", syncBuckets),
		PartialSyncDuration: histogram("sync_partial_proxy_rules_duration_seconds",
			"How long an incremental sync of changed Services took.", syncBuckets),
		// kube-proxy's buckets: 0.25 s, 0.5 s, every second to a minute, then coarser to 5 minutes
		NetworkProgramming: histogram("network_programming_duration_seconds",
			"Time from an endpoint change (its trigger time) to the kernel being programmed.", programmingBuckets()),
		LastSync:   gauge("sync_proxy_rules_last_timestamp_seconds", "When the last successful sync finished (Unix seconds)."),
		LastQueued: gauge("sync_proxy_rules_last_queued_timestamp_seconds", "When the last change was queued for a sync (Unix seconds)."),
		NoLocalEndpoints: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "kubeproxy", Name: "sync_proxy_rules_no_local_endpoints_total",
			Help: "Services with a Local traffic policy (internal or external) that have endpoints, but none on this node.",
		}, []string{"traffic_policy", "ip_family"}),
		HealthzTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kubeproxy", Name: "proxy_healthz_total", Help: "Answers of /healthz, by HTTP status code.",
		}, []string{"code"}),
		LivezTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kubeproxy", Name: "proxy_livez_total", Help: "Answers of /livez, by HTTP status code.",
		}, []string{"code"}),
		EndpointChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "kubeproxy", Name: "sync_proxy_rules_endpoint_changes_total",
			Help: "EndpointSlice changes seen.",
		}),
		EndpointChangesPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubeproxy", Name: "sync_proxy_rules_endpoint_changes_pending",
			Help: "EndpointSlice changes not yet synced.",
		}),
		ServiceChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "kubeproxy", Name: "sync_proxy_rules_service_changes_total",
			Help: "Service changes seen.",
		}),
		ServiceChangesPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubeproxy", Name: "sync_proxy_rules_service_changes_pending",
			Help: "Service changes not yet synced.",
		}),
		OpsApplied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ipvsproxy", Name: "ops_applied_total",
			Help: "Kernel operations applied, by kind (add-vs, add-rs, add-entry, ...).",
		}, []string{"op"}),
		KernelErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ipvsproxy", Name: "kernel_errors_total",
			Help: "Kernel operations that failed, by kind.",
		}, []string{"op"}),
		Syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ipvsproxy", Name: "syncs_total",
			Help: "Syncs run, by type (full, partial, drain) and result (success, error).",
		}, []string{"type", "result"}),
		InvalidObjs: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "ipvsproxy", Name: "invalid_objects",
			Help: "Errors in Services and EndpointSlices that could not be programmed as written.",
		}),
		FailingServices: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "ipvsproxy", Name: "failing_services",
			Help: "Services whose kernel operations failed, retried on their own with a backoff (see ipvs-proxy status).",
		}),
		VirtualServer: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "ipvsproxy", Name: "virtual_servers",
			Help: "Virtual servers wanted in the kernel.",
		}),
		RealServers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "ipvsproxy", Name: "real_servers",
			Help: "Real servers wanted in the kernel.",
		}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ipvsproxy", Name: "config_reloads_total",
			Help: "Changes of the config file, by result: applied (in place), restart (a field that needs a restart changed), invalid (the running configuration was kept).",
		}, []string{"result"}),
		ConfigValid: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "ipvsproxy", Name: "config_last_reload_successful",
			Help: "1 while the config file on disk is valid (or none is used), 0 while it holds a change that could not be read.",
		}),
	}
	m.Registry.MustRegister(m.SyncDuration.vec, m.FullSyncDuration.vec, m.PartialSyncDuration.vec, m.NetworkProgramming.vec,
		m.LastSync.vec, m.LastQueued.vec, m.NoLocalEndpoints, m.HealthzTotal, m.LivezTotal,
		m.EndpointChanges, m.EndpointChangesPending, m.ServiceChanges, m.ServiceChangesPending,
		m.OpsApplied, m.KernelErrors, m.Syncs, m.InvalidObjs, m.FailingServices, m.VirtualServer, m.RealServers, m.ConfigReloads, m.ConfigValid)
	m.ConfigValid.Set(1)
	return m
}

// Gatherer gathers ipvs-proxy's registry and component-base's legacy
// registry (Go and process collectors, client-go's rest_client_*), which
// together are what /metrics serves.
func (m *Metrics) Gatherer() prometheus.Gatherer {
	return prometheus.Gatherers{m.Registry, legacyregistry.DefaultGatherer}
}

// programmingBuckets are kube-proxy's network_programming_duration_seconds
// buckets, with the 0 that component-base's MergeBuckets puts first.
func programmingBuckets() []float64 {
	b := []float64{0, 0.25, 0.5}
	b = append(b, prometheus.LinearBuckets(1, 1, 59)...)
	b = append(b, prometheus.LinearBuckets(60, 5, 12)...)
	return append(b, prometheus.LinearBuckets(120, 30, 7)...)
}
