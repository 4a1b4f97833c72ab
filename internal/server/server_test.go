package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/health"
)

// get asks h for path and returns the status and the decoded JSON body.
func get(t *testing.T, h http.Handler, path string) (int, map[string]any) {
	t.Helper()
	srv := newServer(h, HealthLimits)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	resp, err := http.Get("http://" + ln.Addr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// /healthz answers kube-proxy's fields: 503 until the first full sync,
// nodeEligible false (and 503) for a Node being deleted; /livez ignores
// both and fails only when the loop is stuck.
func TestHealthzLikeKubeProxy(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tr := health.NewTracker(time.Minute, time.Minute, func() time.Time { return now })
	mux := HealthMux(tr)
	code, body := get(t, mux, "/healthz")
	if code != 503 || body["nodeEligible"] != true || body["currentTime"] != now.String() {
		t.Errorf("before the first sync: %d %v, want 503 with kube-proxy's fields", code, body)
	}
	if code, _ := get(t, mux, "/livez"); code != 200 {
		t.Errorf("/livez before the first sync: %d, want 200", code)
	}
	tr.Synced(now, true)
	if code, body := get(t, mux, "/healthz"); code != 200 || body["lastUpdated"] != now.String() {
		t.Errorf("after the first sync: %d %v", code, body)
	}
	tr.NodeEligible(false, "the Node is being deleted")
	if code, body := get(t, mux, "/healthz"); code != 503 || body["nodeEligible"] != false {
		t.Errorf("Node being deleted: %d %v, want 503 and nodeEligible false", code, body)
	}
	if code, body := get(t, mux, "/livez"); code != 200 || body["nodeEligible"] != nil {
		t.Errorf("/livez of a Node being deleted: %d %v, want 200 without nodeEligible", code, body)
	}
	now = now.Add(2 * time.Minute)
	if code, _ := get(t, mux, "/livez"); code != 503 {
		t.Errorf("/livez after the loop has not turned for two minutes: %d, want 503", code)
	}
}

// serve starts Serve on a free port with limits and returns its address.
func serve(t *testing.T, h http.Handler, l Limits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done, err := Serve(ctx, addr, h, l, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

// waitFor polls ok until it holds; the deadline only turns a hang into a failure.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not %s after 10 s", what)
		}
	}
}

// closedByServer reports whether the server has closed c.
func closedByServer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })

// An idle keep-alive connection and a request that never finishes are cut
// off by the server (they used to be held forever: 2,000 idle connections
// after 7 s, ~11 KiB each).
func TestIdleAndSlowClientsAreCutOff(t *testing.T) {
	addr := serve(t, ok, Limits{Conns: 8, ReadHeader: 100 * time.Millisecond, Read: 200 * time.Millisecond,
		Write: time.Second, Idle: 100 * time.Millisecond, MaxHeaderBytes: 4096})
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil {
		t.Fatalf("keep-alive request: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("keep-alive request: %s", resp.Status)
	}
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "GET / HTTP/1.1\r\nHost: x\r\nX-Half: ")
	waitFor(t, "closed the idle keep-alive connection", func() bool { return closedByServer(idle) })
	waitFor(t, "closed the half-sent request", func() bool { return closedByServer(slow) })
}

// Requests beyond the connection limit wait for a free slot: with both
// slots held by clients that send nothing, a third request is answered only
// once the server has cut one of them off.
func TestConnectionLimit(t *testing.T) {
	addr := serve(t, ok, Limits{Conns: 2, ReadHeader: 300 * time.Millisecond, Read: time.Second, Write: time.Second, Idle: time.Second})
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !closedByServer(held[0]) && !closedByServer(held[1]) {
		t.Error("a third request was served while two held connections filled the limit of 2")
	}
}

// A busy address (an old kube-proxy on 10256) is not fatal: Serve returns
// at once and serves there once the address is free.
func TestBusyAddressIsRetried(t *testing.T) {
	old, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := old.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, err := Serve(ctx, addr, ok, HealthLimits, zap.NewNop())
	if err != nil {
		t.Fatalf("a busy address stopped the start: %v", err)
	}
	old.Close()
	waitFor(t, "serving on the freed address", func() bool {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b) == "ok"
	})
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
	if _, err := Serve(context.Background(), "127.0.0.1:99999", ok, HealthLimits, zap.NewNop()); err == nil {
		t.Error("an invalid address was accepted")
	}
}

// /status is for the node itself unless asked, and one at a time.
func TestStatusGuards(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "report")
	})
	h := Bounded(LoopbackOnly(slow), 1)
	remote := &http.Request{RemoteAddr: "10.0.0.7:3456", Header: http.Header{}}
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, remote)
	if rec.code != http.StatusForbidden || !strings.Contains(rec.body.String(), "--status-remote") {
		t.Errorf("from 10.0.0.7: %d %s, want 403", rec.code, rec.body.String())
	}
	first := make(chan *recorder)
	go func() {
		r := &recorder{header: http.Header{}}
		h.ServeHTTP(r, &http.Request{RemoteAddr: "127.0.0.1:1234", Header: http.Header{}})
		first <- r
	}()
	<-entered
	second := &recorder{header: http.Header{}}
	h.ServeHTTP(second, &http.Request{RemoteAddr: "[::1]:1234", Header: http.Header{}})
	if second.code != http.StatusTooManyRequests {
		t.Errorf("a second request while one runs: %d, want 429", second.code)
	}
	close(release)
	if r := <-first; r.code != 0 && r.code != 200 || r.body.String() != "report" {
		t.Errorf("the first request: %d %s", r.code, r.body.String())
	}
}

type recorder struct {
	header http.Header
	code   int
	body   strings.Builder
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int)        { r.code = code }

// Removing health-check node port servers never waits for their clients
// (it runs on the sync loop, which blocked a second per server while a
// client held a half-sent request): the ports are free at once, and the
// clients are cut off in the background.
func TestServiceHealthServerRemovalDoesNotWait(t *testing.T) {
	m := NewServiceHealthServers("127.0.0.1", nil, zap.NewNop())
	m.grace = time.Hour // a Sync that waited for the clients would hang
	want := map[uint16]ServiceHealth{}
	for range 5 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		want[uint16(ln.Addr().(*net.TCPAddr).Port)] = ServiceHealth{Namespace: "default", Name: "lb", LocalEndpoints: 1}
		ln.Close()
	}
	m.Sync(want)
	for port := range want {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Half: ")
	}
	done := make(chan struct{})
	go func() { m.Sync(nil); close(done) }()
	waitFor(t, "done removing 5 servers whose clients hold half-sent requests", func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
	for port := range want {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
		if err != nil {
			t.Errorf("port %d not free after its server was removed: %v", port, err)
			continue
		}
		ln.Close()
	}
	m.Close()
}
