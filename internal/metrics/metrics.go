// Package metrics defines ipvs-proxy's Prometheus metrics: kube-proxy's names
// for what kube-proxy also measures, ipvsproxy_* for the rest.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every metric; a nil *Metrics records nothing.
type Metrics struct {
	Registry *prometheus.Registry

	SyncDuration           *prometheus.HistogramVec // kubeproxy_sync_proxy_rules_duration_seconds
	FullSyncDuration       prometheus.Histogram
	PartialSyncDuration    prometheus.Histogram
	NetworkProgramming     prometheus.Histogram // kubeproxy_network_programming_duration_seconds
	LastSync               prometheus.Gauge     // kubeproxy_sync_proxy_rules_last_timestamp_seconds
	LastQueued             prometheus.Gauge
	EndpointChanges        prometheus.Counter
	EndpointChangesPending prometheus.Gauge
	ServiceChanges         prometheus.Counter
	ServiceChangesPending  prometheus.Gauge

	OpsApplied   *prometheus.CounterVec // ipvsproxy_ops_applied_total{op}
	KernelErrors *prometheus.CounterVec // ipvsproxy_kernel_errors_total{op}
	Syncs        *prometheus.CounterVec // ipvsproxy_syncs_total{type,result}
	InvalidObjs  prometheus.Gauge
	// FailingServices is ipvsproxy_failing_services: Services whose kernel
	// operations failed and are being retried on their own.
	FailingServices prometheus.Gauge
	VirtualServer   prometheus.Gauge
	RealServers     prometheus.Gauge
}

// New creates the metrics in a fresh registry (with Go and process collectors).
func New() *Metrics {
	buckets := prometheus.ExponentialBuckets(0.001, 2, 16)
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		SyncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "kubeproxy", Name: "sync_proxy_rules_duration_seconds",
			Help: "How long a sync took, from the start to the last kernel acknowledgement.", Buckets: buckets,
		}, nil),
		FullSyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kubeproxy", Name: "sync_full_proxy_rules_duration_seconds",
			Help: "How long a full sync (dump, diff of everything, apply) took.", Buckets: buckets,
		}),
		PartialSyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kubeproxy", Name: "sync_partial_proxy_rules_duration_seconds",
			Help: "How long an incremental sync of changed Services took.", Buckets: buckets,
		}),
		NetworkProgramming: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kubeproxy", Name: "network_programming_duration_seconds",
			Help:    "Time from an endpoint change (its trigger time) to the kernel being programmed.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
		}),
		LastSync: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubeproxy", Name: "sync_proxy_rules_last_timestamp_seconds",
			Help: "When the last successful sync finished (Unix seconds).",
		}),
		LastQueued: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubeproxy", Name: "sync_proxy_rules_last_queued_timestamp_seconds",
			Help: "When the last change was queued for a sync (Unix seconds).",
		}),
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
	}
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.SyncDuration, m.FullSyncDuration, m.PartialSyncDuration, m.NetworkProgramming, m.LastSync, m.LastQueued,
		m.EndpointChanges, m.EndpointChangesPending, m.ServiceChanges, m.ServiceChangesPending,
		m.OpsApplied, m.KernelErrors, m.Syncs, m.InvalidObjs, m.FailingServices, m.VirtualServer, m.RealServers)
	return m
}
