package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/netutil"
)

// Limits bound what clients of one server can hold.
type Limits struct {
	// Conns is how many connections the server serves at once; further
	// ones wait in the kernel's accept queue until one closes.
	Conns int
	// ReadHeader, Read, Write and Idle are the http.Server timeouts: a
	// client that sends its request slowly, reads the answer slowly or
	// keeps an idle keep-alive connection is cut off after them.
	ReadHeader, Read, Write, Idle time.Duration
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes int
}

// HealthLimits suit /healthz and the health-check node ports: tiny
// requests and answers, asked every few seconds by load balancers and
// probes, open to anyone who can reach the node.
var HealthLimits = Limits{Conns: 64, ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: 10 * time.Second,
	Idle: 15 * time.Second, MaxHeaderBytes: 8 << 10}

// MetricsLimits suit /metrics and /status: a report of 10,000 Services
// takes a while to write under load.
var MetricsLimits = Limits{Conns: 32, ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: 3 * time.Minute,
	Idle: 60 * time.Second, MaxHeaderBytes: 16 << 10}

// newServer returns an http.Server for h with the limits' timeouts.
func newServer(h http.Handler, l Limits) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: l.ReadHeader, ReadTimeout: l.Read, WriteTimeout: l.Write,
		IdleTimeout: l.Idle, MaxHeaderBytes: l.MaxHeaderBytes}
}

// listen listens on addr with the limits' connection bound.
func listen(addr string, l Limits) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if l.Conns > 0 {
		ln = netutil.LimitListener(ln, l.Conns)
	}
	return ln, nil
}

// bindRetryMax bounds the wait between two attempts to bind a busy address.
const bindRetryMax = 30 * time.Second

// Serve serves h on addr until ctx is done; the returned channel gets the
// server's end (nil for a clean stop). An address already in use (an old
// kube-proxy still holding 10256 or 10249 during a migration) is not fatal:
// it is logged and bound again every second or so, up to every 30 s, while
// the proxy programs the kernel meanwhile. Any other listen error is
// returned at once, so that a wrong address stops the start.
func Serve(ctx context.Context, addr string, h http.Handler, l Limits, log *zap.Logger) (<-chan error, error) {
	ln, err := listen(addr, l)
	busy := errors.Is(err, syscall.EADDRINUSE)
	if err != nil && !busy {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	done := make(chan error, 1)
	go func() {
		if busy {
			log.Warn("address in use (an old kube-proxy still running?); serving there once it is free", zap.String("addr", addr), zap.Error(err))
			if ln = bindWhenFree(ctx, addr, l); ln == nil {
				done <- nil
				return
			}
		}
		log.Info("serving", zap.String("addr", ln.Addr().String()))
		done <- serveUntil(ctx, newServer(h, l), ln)
	}()
	return done, nil
}

// bindWhenFree retries listening on a busy address with a backoff until it
// works (nil when ctx ends first).
func bindWhenFree(ctx context.Context, addr string, l Limits) net.Listener {
	wait := time.Second
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		if ln, err := listen(addr, l); err == nil {
			return ln
		}
		wait = min(2*wait, bindRetryMax)
	}
}

// serveUntil serves on ln until ctx is done.
func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener) error {
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if srv.Shutdown(sctx) != nil {
				_ = srv.Close()
			}
		case <-stopped:
		}
	}()
	err := srv.Serve(ln)
	close(stopped)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
