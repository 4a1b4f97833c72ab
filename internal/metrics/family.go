package metrics

import (
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The ip_family label values, kube-proxy's (v1.IPFamily).
const (
	IPv4 = "IPv4"
	IPv6 = "IPv6"
)

// families are the IP families the node serves; the per-family metrics
// record each observation once for each.
type families struct{ v atomic.Pointer[[]string] }

func (f *families) get() []string {
	if p := f.v.Load(); p != nil {
		return *p
	}
	return nil
}

// SetFamilies sets the IP families (IPv4, IPv6) the node serves. Until it
// is called the per-family metrics record nothing.
func (m *Metrics) SetFamilies(fams []string) {
	if m == nil {
		return
	}
	cp := append([]string(nil), fams...)
	m.families.v.Store(&cp)
}

// FamilyHistogram is a histogram with kube-proxy's ip_family label.
type FamilyHistogram struct {
	vec *prometheus.HistogramVec
	fam *families
}

// Observe records v for every family the node serves.
func (h FamilyHistogram) Observe(v float64) {
	for _, f := range h.fam.get() {
		h.vec.WithLabelValues(f).Observe(v)
	}
}

// FamilyGauge is a gauge with kube-proxy's ip_family label.
type FamilyGauge struct {
	vec *prometheus.GaugeVec
	fam *families
}

// SetToCurrentTime sets the gauge of every family the node serves to now.
func (g FamilyGauge) SetToCurrentTime() {
	for _, f := range g.fam.get() {
		g.vec.WithLabelValues(f).SetToCurrentTime()
	}
}

// BuildInfo is ipvsproxy_build_info: 1, with the version and git commit
// the binary was built from (kube-proxy's kubernetes_build_info would claim
// a Kubernetes version ipvs-proxy does not have).
func BuildInfo(version, commit string) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "ipvsproxy", Name: "build_info",
		Help: "Always 1; the labels say which version of ipvs-proxy runs, from which git commit, built with which Go.",
	}, []string{"version", "git_commit", "go_version"})
	g.WithLabelValues(version, commit, runtime.Version()).Set(1)
	return g
}

// SourceStale is ipvsproxy_source_stale_seconds: how long the source (the
// API server, or the manifest directory) has not answered, 0 while it does;
// since returns when it stopped answering (zero: it answers).
func SourceStale(since func() time.Time) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "ipvsproxy", Name: "source_stale_seconds",
		Help: "How long the source (API server or manifest directory) has not answered; 0 while it answers. What is programmed keeps serving meanwhile.",
	}, func() float64 {
		if t := since(); !t.IsZero() {
			return time.Since(t).Seconds()
		}
		return 0
	})
}

// FaultRate is ipvsproxy_fault_injection_rate, registered only when fault
// injection is on (testing): the failure rate the daemon applies now, so
// that a scenario knows when a rate it wrote has been read.
func FaultRate(rate func() float64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "ipvsproxy", Name: "fault_injection_rate",
		Help: "The share of kernel writes made to fail on purpose (testing only; absent unless fault injection is on).",
	}, rate)
}
