package status

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Kernel is what a status report reads from the kernel.
type Kernel interface {
	// Dump returns every virtual server with its real servers and connection counts.
	Dump() (map[state.VSKey]*state.Service, error)
	// DumpDestinations returns the real servers of some virtual servers.
	DumpDestinations(keys []state.VSKey) (map[state.VSKey]map[state.RSKey]state.RealServer, error)
	// ServiceStats returns every virtual server's traffic counters (one dump).
	ServiceStats() (map[state.VSKey]state.Stats, error)
}

// Viewer gives a copy of what the proxier wants.
type Viewer interface {
	View(ctx context.Context) (*proxier.View, error)
}

// Handler serves the report as JSON: GET /status[?service=namespace/name].
// With a service filter only that Service's virtual servers are read from the kernel.
func Handler(node string, v Viewer, k Kernel) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
		defer cancel()
		rep, err := Collect(ctx, node, v, k, r.URL.Query().Get("service"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	})
}

// Collect builds a report: the wanted state from the proxier, the real
// servers and counters from the kernel.
func Collect(ctx context.Context, node string, v Viewer, k Kernel, service string) (*Report, error) {
	view, err := v.View(ctx)
	if err != nil {
		return nil, err
	}
	var filter func(state.Origin) bool
	if service != "" {
		service = strings.TrimSpace(service)
		filter = func(o state.Origin) bool { return o.Service == service }
	}
	stats, err := k.ServiceStats()
	if err != nil {
		return nil, err
	}
	kernel := map[state.VSKey]*state.Service{}
	if filter == nil {
		if kernel, err = k.Dump(); err != nil {
			return nil, err
		}
	} else {
		var keys []state.VSKey
		for key, s := range view.Services {
			if filter(s.Origin) {
				keys = append(keys, key)
			}
		}
		dests, err := k.DumpDestinations(keys)
		if err != nil {
			return nil, err
		}
		for key, rss := range dests {
			if _, present := stats[key]; present {
				kernel[key] = &state.Service{VirtualServer: view.Services[key].VirtualServer, RealServers: rss}
			}
		}
	}
	return Build(node, view, kernel, stats, filter), nil
}
