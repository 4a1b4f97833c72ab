package server

import (
	"net"
	"net/http"
	"net/netip"
)

// LoopbackOnly answers 403 to clients that do not connect from a loopback
// address. /status lists every namespace's Services and endpoints without
// authentication; metricsBindAddress is often opened to all addresses for
// Prometheus, which must not open /status with it.
func LoopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		a, perr := netip.ParseAddr(host)
		if err != nil || perr != nil || !a.Unmap().IsLoopback() {
			http.Error(w, "this endpoint answers only on the node itself (127.0.0.1 or ::1); run `ipvs-proxy status` there, "+
				"or start the daemon with --status-remote", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Bounded lets at most n requests run h at once; the others get 429 at once
// instead of queueing (each /status request dumps the whole IPVS table).
func Bounded(h http.Handler, n int) http.Handler {
	slots := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			h.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy: another status request is running", http.StatusTooManyRequests)
		}
	})
}
