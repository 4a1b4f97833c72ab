// Package server serves what users of kube-proxy already know: /healthz and
// /livez on the healthz address, /metrics and /proxyMode on the metrics
// address, and one health-check server per healthCheckNodePort of Services
// with externalTrafficPolicy Local.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/health"
	"github.com/ipvs-proxy/ipvs-proxy/internal/metrics"
)

// HealthHandler answers /healthz and /livez: 200 while syncs keep up, 503
// when a change has waited longer than the timeout. The body holds only
// timestamps, nothing about Services.
func HealthHandler(t *health.Tracker, now func() time.Time) http.Handler {
	if now == nil {
		now = time.Now
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := t.Status()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if !s.Healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		body := struct {
			LastUpdated  time.Time `json:"lastUpdated"`
			CurrentTime  time.Time `json:"currentTime"`
			NodeEligible bool      `json:"nodeEligible"`
			// SourceStaleSince: the API server (or manifest directory) has
			// not answered since then; the last known state keeps serving.
			SourceStaleSince *time.Time `json:"sourceStaleSince,omitempty"`
		}{LastUpdated: s.LastUpdated, CurrentTime: now(), NodeEligible: true}
		if !s.SourceStaleSince.IsZero() {
			body.SourceStaleSince = &s.SourceStaleSince
		}
		_ = json.NewEncoder(w).Encode(body)
	})
}

// MetricsMux serves /metrics, /proxyMode and any extra handlers (e.g. /status).
func MetricsMux(m *metrics.Metrics, extra map[string]http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Gatherer(), promhttp.HandlerOpts{}))
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
	h := HealthHandler(t, nil)
	mux.Handle("/healthz", h)
	mux.Handle("/livez", h)
	return mux
}

// Serve listens on addr and serves h until ctx is done. A listen failure is
// returned at once so that a port conflict is reported at startup.
func Serve(ctx context.Context, addr string, h http.Handler, log *zap.Logger) (<-chan error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("serving", zap.String("addr", ln.Addr().String()))
	return done, nil
}
