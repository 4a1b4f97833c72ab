package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	logsapi "k8s.io/component-base/logs/api/v1"
	kpv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/metrics"
	"github.com/ipvs-proxy/ipvs-proxy/internal/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/internal/server"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"github.com/ipvs-proxy/ipvs-proxy/internal/status"
)

// endpoints are the metrics address's handlers besides /metrics and
// /proxyMode: /status, /configz, and with enableProfiling kube-proxy's
// /debug/pprof and /debug/flags/v. /status lists every Service
// unauthenticated: it answers only the node itself unless statusRemote,
// and one or two requests at a time (each dumps the IPVS table).
func endpoints(nodeName string, p *proxier.Proxier, stats status.Kernel, cz *configz, profiling, statusRemote bool) map[string]http.Handler {
	h := map[string]http.Handler{"/configz": cz}
	if stats != nil {
		st := status.Handler(nodeName, p, stats)
		if !statusRemote {
			st = server.LoopbackOnly(st)
		}
		h["/status"] = server.Bounded(st, 2)
	}
	if profiling {
		h["/debug/pprof/"] = http.HandlerFunc(pprof.Index)
		h["/debug/pprof/cmdline"] = http.HandlerFunc(pprof.Cmdline)
		h["/debug/pprof/profile"] = http.HandlerFunc(pprof.Profile)
		h["/debug/pprof/symbol"] = http.HandlerFunc(pprof.Symbol)
		h["/debug/pprof/trace"] = http.HandlerFunc(pprof.Trace)
		h["/debug/flags/v"] = http.HandlerFunc(verbosityHandler)
	}
	return h
}

// configz serves the effective configuration at /configz the way kube-proxy
// does: {"kubeproxy.config.k8s.io": KubeProxyConfiguration}. (component-base's
// configz keeps one process-wide registry, which a daemon run twice in one
// test process cannot use.)
type configz struct {
	v atomic.Pointer[kpv1alpha1.KubeProxyConfiguration]
}

func (c *configz) set(cfg *config.Config) { c.v.Store(cfg.V1alpha1()) }

func (c *configz) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"kubeproxy.config.k8s.io": c.v.Load()})
}

// verbosityHandler is kube-proxy's /debug/flags/v: PUT a number to change -v.
func verbosityHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		http.Error(w, "PUT a verbosity level", http.StatusMethodNotAllowed)
		return
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, 32))
	var v logsapi.VerbosityLevel
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err == nil {
		v = logsapi.VerbosityLevel(n)
		err = setVerbosity(v)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	_, _ = io.WriteString(w, "verbosity set to "+strconv.Itoa(int(v))+"\n")
}

// countAnswers counts the answers of /healthz and /livez by status code
// (kubeproxy_proxy_healthz_total, kubeproxy_proxy_livez_total).
func countAnswers(h http.Handler, m *metrics.Metrics) http.Handler {
	counters := map[string]*prometheus.CounterVec{"/healthz": m.HealthzTotal, "/livez": m.LivezTotal}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := counters[r.URL.Path]
		if !ok {
			h.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		c.WithLabelValues(strconv.Itoa(rec.code)).Inc()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// namespaceFilter limits the per-Service traffic metrics to Services in
// the given namespaces (all when empty).
func namespaceFilter(o status.OriginLookup, namespaces []string) status.OriginLookup {
	if len(namespaces) == 0 {
		return o
	}
	return filteredOrigins{o, namespaces}
}

type filteredOrigins struct {
	status.OriginLookup
	namespaces []string
}

func (f filteredOrigins) Get(k state.VSKey) (state.Origin, bool) {
	o, ok := f.OriginLookup.Get(k)
	if !ok {
		return o, false
	}
	ns, _, _ := strings.Cut(o.Service, "/")
	return o, slices.Contains(f.namespaces, ns)
}
