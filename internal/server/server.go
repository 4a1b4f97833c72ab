// Package server serves what users of kube-proxy already know: /healthz and
// /livez on the healthz address, /metrics and /proxyMode on the metrics
// address, and one health-check server per healthCheckNodePort of Services
// with externalTrafficPolicy Local.
//
// Every server is hardened against clients that hold connections: reads,
// writes and idle keep-alive connections time out, headers are bounded, and
// each listener accepts a bounded number of connections at once (see
// Limits). /healthz listens on every address, so anyone who can reach the
// node can connect to it.
package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ipvs-proxy/ipvs-proxy/internal/health"
	"github.com/ipvs-proxy/ipvs-proxy/internal/metrics"
)

// healthzBody is kube-proxy's /healthz answer, field for field, with the
// times printed as kube-proxy prints them (Go's time format); lastUpdated
// is the current time while healthy, as kube-proxy does for compatibility
// with older releases. sourceStaleSince is ipvs-proxy's own: the API server
// (or manifest directory) has not answered since then, and the last known
// state keeps serving.
type healthzBody struct {
	LastUpdated      string     `json:"lastUpdated"`
	CurrentTime      string     `json:"currentTime"`
	NodeEligible     *bool      `json:"nodeEligible,omitempty"`
	SourceStaleSince *time.Time `json:"sourceStaleSince,omitempty"`
}

// HealthzHandler answers /healthz like kube-proxy: 503 until the first full
// sync has succeeded, while a change has waited longer than the timeout, or
// while the Node is not eligible (being deleted, or tainted
// ToBeDeletedByClusterAutoscaler); 200 otherwise. The body holds only
// timestamps and eligibility, nothing about Services.
func HealthzHandler(t *health.Tracker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := t.Status()
		eligible := s.NodeEligible
		body := healthzBody{LastUpdated: s.LastUpdated.String(), CurrentTime: s.Now.String(), NodeEligible: &eligible}
		if s.Healthy {
			body.LastUpdated = body.CurrentTime
		}
		if !s.SourceStaleSince.IsZero() {
			body.SourceStaleSince = &s.SourceStaleSince
		}
		writeHealth(w, s.Healthy, body)
	})
}

// LivezHandler answers /livez: 503 only when the sync loop has not turned
// for the liveness timeout (stuck in the kernel, or deadlocked), which a
// restart can fix; 200 otherwise, whatever the state of Services, the
// source or the Node.
func LivezHandler(t *health.Tracker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := t.Status()
		body := healthzBody{LastUpdated: s.LastTurned.String(), CurrentTime: s.Now.String()}
		if s.Live {
			body.LastUpdated = body.CurrentTime
		}
		writeHealth(w, s.Live, body)
	})
}

func writeHealth(w http.ResponseWriter, ok bool, body healthzBody) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body)
}

// MetricsMux serves /metrics, /proxyMode and any extra handlers (e.g. /status).
func MetricsMux(m *metrics.Metrics, extra map[string]http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Gatherer(), promhttp.HandlerOpts{MaxRequestsInFlight: 4}))
	mux.HandleFunc("/proxyMode", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "ipvs")
	})
	for path, h := range extra {
		mux.Handle(path, h)
	}
	return mux
}

// HealthMux serves /healthz and /livez.
func HealthMux(t *health.Tracker) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/healthz", HealthzHandler(t))
	mux.Handle("/livez", LivezHandler(t))
	return mux
}

// shutdown stops srv in the background: its listeners close at once (so
// the port can be bound again), connections in flight get grace.
func shutdown(srv *http.Server, grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	go func() {
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
	}()
}
