package status

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// OriginLookup maps a virtual server to its Service port.
type OriginLookup interface {
	Get(k state.VSKey) (state.Origin, bool)
}

// Traffic exports IPVS's per-virtual-server counters as per-Service-port
// Prometheus counters. The kernel is read in the background (one service
// dump per interval, whatever the number of real servers); a scrape only
// reads the cached values, so its cost does not depend on the kernel.
type Traffic struct {
	stats    func() (map[state.VSKey]state.Stats, error)
	origins  OriginLookup
	interval time.Duration
	log      *zap.Logger

	mu    sync.Mutex
	cache map[portKey]state.Stats

	conns, packets, bytes *prometheus.Desc
}

type portKey struct{ namespace, service, port string }

// NewTraffic returns a collector refreshed every interval.
func NewTraffic(stats func() (map[state.VSKey]state.Stats, error), origins OriginLookup, interval time.Duration, log *zap.Logger) *Traffic {
	labels := []string{"namespace", "service", "port"}
	return &Traffic{stats: stats, origins: origins, interval: interval, log: log, cache: map[portKey]state.Stats{},
		conns: prometheus.NewDesc("ipvsproxy_service_connections_total",
			"Connections IPVS scheduled for a Service port, over all its virtual servers (ClusterIP, NodePorts, external and load balancer IPs).", labels, nil),
		packets: prometheus.NewDesc("ipvsproxy_service_packets_total",
			"Packets through a Service port's virtual servers, by direction (in: from clients, out: from backends).", append(labels, "direction"), nil),
		bytes: prometheus.NewDesc("ipvsproxy_service_bytes_total",
			"Bytes through a Service port's virtual servers, by direction.", append(labels, "direction"), nil),
	}
}

// Run refreshes the counters until ctx is done.
func (t *Traffic) Run(ctx context.Context) {
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		t.Refresh()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Refresh reads the kernel's counters once and sums them per Service port.
func (t *Traffic) Refresh() {
	all, err := t.stats()
	if err != nil {
		t.log.Warn("cannot read IPVS counters", zap.Error(err))
		return
	}
	sums := make(map[portKey]state.Stats, len(all))
	for k, st := range all {
		o, ok := t.origins.Get(k)
		if !ok {
			continue // not ours
		}
		ns, name, _ := strings.Cut(o.Service, "/")
		pk := portKey{ns, name, o.Port}
		s := sums[pk]
		s.Conns += st.Conns
		s.InPackets += st.InPackets
		s.OutPackets += st.OutPackets
		s.InBytes += st.InBytes
		s.OutBytes += st.OutBytes
		sums[pk] = s
	}
	t.mu.Lock()
	t.cache = sums
	t.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (t *Traffic) Describe(ch chan<- *prometheus.Desc) {
	ch <- t.conns
	ch <- t.packets
	ch <- t.bytes
}

// Collect implements prometheus.Collector from the cached counters.
func (t *Traffic) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, s := range t.cache {
		ch <- prometheus.MustNewConstMetric(t.conns, prometheus.CounterValue, float64(s.Conns), k.namespace, k.service, k.port)
		ch <- prometheus.MustNewConstMetric(t.packets, prometheus.CounterValue, float64(s.InPackets), k.namespace, k.service, k.port, "in")
		ch <- prometheus.MustNewConstMetric(t.packets, prometheus.CounterValue, float64(s.OutPackets), k.namespace, k.service, k.port, "out")
		ch <- prometheus.MustNewConstMetric(t.bytes, prometheus.CounterValue, float64(s.InBytes), k.namespace, k.service, k.port, "in")
		ch <- prometheus.MustNewConstMetric(t.bytes, prometheus.CounterValue, float64(s.OutBytes), k.namespace, k.service, k.port, "out")
	}
}
