package kube

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/apiserver"
)

// TestStaleWhileAPIServerSilent: a network that silently drops everything
// between the source and the API server gives the informers no error for
// tens of seconds (client-go's HTTP/2 health check needs 45 s). Here a relay
// that stops relaying (keeping its connections open) plays that network: the
// source must report itself stale within a few probe periods, and fresh
// again once the API server answers.
func TestStaleWhileAPIServerSilent(t *testing.T) {
	srv := apiserver.StartForTest(t, apiserver.Options{})
	u, err := url.Parse(srv.RESTConfig().Host)
	if err != nil {
		t.Fatal(err)
	}
	relay := startRelay(t, u.Host)
	rc := rest.CopyConfig(srv.RESTConfig())
	rc.Host = "https://" + relay.addr()
	health := &staleRecorder{}
	sink := &syncedSink{synced: make(chan struct{})}
	src := NewWithClient(Config{NodeName: "node-1", NodeWait: 100 * time.Millisecond, ProbePeriod: 200 * time.Millisecond,
		Health: health}, kubernetes.NewForConfigOrDie(rc))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = src.Run(ctx, sink); close(done) }()
	defer func() { cancel(); relay.resume(); <-done }()
	select {
	case <-sink.synced:
	case <-time.After(30 * time.Second):
		t.Fatal("the informers did not sync")
	}
	time.Sleep(time.Second)
	if health.get() {
		t.Fatal("stale while the API server answers")
	}

	relay.pause()
	waitStale := func(want bool, what string) {
		t.Helper()
		start := time.Now()
		for health.get() != want {
			if time.Since(start) > 5*time.Second {
				t.Fatalf("%s: source stale = %v after %v, want %v", what, !want, time.Since(start), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("%s: stale = %v after %v", what, want, time.Since(start).Round(time.Millisecond))
	}
	waitStale(true, "relay silent")
	relay.resume()
	waitStale(false, "relay back")
}

// staleRecorder is a source.Health that keeps the last value.
type staleRecorder struct {
	mu    sync.Mutex
	stale bool
}

func (r *staleRecorder) SourceStale(v bool) { r.mu.Lock(); r.stale = v; r.mu.Unlock() }
func (r *staleRecorder) get() bool          { r.mu.Lock(); defer r.mu.Unlock(); return r.stale }

// syncedSink is a source.Sink that only hears SetSynced.
type syncedSink struct {
	once   sync.Once
	synced chan struct{}
}

func (s *syncedSink) UpsertService(*v1.Service)            {}
func (s *syncedSink) DeleteService(string, string)         {}
func (s *syncedSink) UpsertSlice(*discovery.EndpointSlice) {}
func (s *syncedSink) DeleteSlice(string, string)           {}
func (s *syncedSink) SetNode(desired.Node)                 {}
func (s *syncedSink) SetServiceCIDRs([]netip.Prefix)       {}
func (s *syncedSink) SetSynced()                           { s.once.Do(func() { close(s.synced) }) }

// relay forwards TCP connections to target; while paused it forwards
// nothing, keeping every connection open, like a network dropping packets.
type relay struct {
	ln     net.Listener
	mu     sync.Mutex
	paused chan struct{} // closed when not paused
	conns  map[net.Conn]struct{}
}

func startRelay(t *testing.T, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, paused: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(r.paused)
	var conns sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		r.resume()
		r.mu.Lock()
		for c := range r.conns {
			_ = c.Close()
		}
		r.mu.Unlock()
		conns.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns[c] = struct{}{}
			r.mu.Unlock()
			conns.Add(1)
			go func() {
				defer conns.Done()
				r.serve(c, target)
			}()
		}
	}()
	return r
}

func (r *relay) addr() string { return r.ln.Addr().String() }

func (r *relay) pause() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.paused = make(chan struct{})
}

func (r *relay) resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.paused:
	default:
		close(r.paused)
	}
}

// wait blocks while the relay is paused.
func (r *relay) wait() {
	r.mu.Lock()
	ch := r.paused
	r.mu.Unlock()
	<-ch
}

func (r *relay) serve(c net.Conn, target string) {
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
		_ = c.Close()
	}()
	r.wait()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				r.wait()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
}
