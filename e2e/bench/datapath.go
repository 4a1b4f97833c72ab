package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/workload"
)

// The datapath scenario: one backend in its own namespace behind a veth,
// one ClusterIP Service in front of it, clients in the root namespace.
const (
	dpBackendNS = "dp-backend"
	dpBackendIP = "10.244.0.2"
	dpVIP       = "10.96.50.1"
	dpWorkers   = 4
	dpTrial     = 5 * time.Second
	dpTrials    = 5
)

// httpResponse is the backend's whole answer; the client reads exactly it.
var httpResponse = []byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")

// DatapathResult holds requests/second, direct to the backend and through
// the VIP, per trial, for keep-alive connections and a connection per request.
type DatapathResult struct {
	Workers                       int
	Trial                         time.Duration
	KeepAliveDirect, KeepAliveVIP []float64
	NewConnDirect, NewConnVIP     []float64
	// The same virtual server made by hand with ipvsadm, with no iptables
	// rule and no ipset: what IPVS itself costs, apart from ipvs-proxy.
	KeepAlivePlain, NewConnPlain []float64
	PlainErr                     string `json:",omitempty"`
}

func (g *guest) runDatapath() (*DatapathResult, error) {
	settle(time.Minute)
	stop, err := startBackend()
	if err != nil {
		return nil, err
	}
	defer stop()
	dir := filepath.Join(g.work, "datapath")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := workload.Spec{Index: 0, Kind: workload.ClusterIP, ClusterIP: netip.MustParseAddr(dpVIP), Endpoints: []netip.Addr{netip.MustParseAddr(dpBackendIP)}}
	if err := writeAtomic(filepath.Join(dir, "svc.yaml"), s.JSON()); err != nil {
		return nil, err
	}
	p, err := startProcess("", filepath.Join(g.logs, "ipvs-proxy-datapath.log"), nil, g.proxyBin, "run", "--manifests", dir,
		"--node-name", workload.NodeName, "--config", g.configPath, "--logging-format", "json")
	if err != nil {
		return nil, err
	}
	stopped := false
	stopProxy := func() {
		if !stopped {
			stopped = true
			p.Stop()
			_, _ = run("", g.proxyBin, "cleanup")
		}
	}
	defer stopProxy()
	if _, err := p.next(5*time.Minute, func(s syncLine) bool { return s.Type == "full" }); err != nil {
		return nil, err
	}
	res := &DatapathResult{Workers: dpWorkers, Trial: dpTrial}
	direct, vip := net.JoinHostPort(dpBackendIP, "8080"), net.JoinHostPort(dpVIP, "80")
	for _, target := range []string{direct, vip} {
		if _, err := load(target, true, time.Second); err != nil {
			return nil, fmt.Errorf("warm-up of %s: %w", target, err)
		}
	}
	for t := range dpTrials {
		if err := trials(t, []trial{{direct, true, &res.KeepAliveDirect}, {vip, true, &res.KeepAliveVIP},
			{direct, false, &res.NewConnDirect}, {vip, false, &res.NewConnVIP}}); err != nil {
			return res, err
		}
	}
	// The reference for IPVS's own cost; a failure here is reported, not fatal.
	stopProxy()
	if err := plainIPVS(res); err != nil {
		res.PlainErr = err.Error()
		log.Printf("datapath with IPVS alone: %v", err)
	}
	return res, nil
}

// trial is one load run of a trial round, and where its result goes.
type trial struct {
	target    string
	keepAlive bool
	out       *[]float64
}

func trials(round int, ts []trial) error {
	for _, c := range ts {
		settle(10 * time.Second)
		rps, err := load(c.target, c.keepAlive, dpTrial)
		if err != nil {
			return err
		}
		*c.out = append(*c.out, rps)
		log.Printf("datapath trial %d: %s keep-alive=%v: %.0f requests/s", round, c.target, c.keepAlive, rps)
	}
	return nil
}

// plainIPVS measures the VIP made by hand: a dummy link holding it and one
// masquerading virtual server, as `ipvsadm -A/-a` would leave them, with
// no iptables rule, no ipset and no conntrack sysctl of ours.
func plainIPVS(res *DatapathResult) error {
	setup := [][]string{
		{ipBin, "link", "add", "dp-ipvs", "type", "dummy"},
		{ipBin, "addr", "add", dpVIP + "/32", "dev", "dp-ipvs"},
		{ipvsadmBin, "-A", "-t", dpVIP + ":80", "-s", "rr"},
		{ipvsadmBin, "-a", "-t", dpVIP + ":80", "-r", dpBackendIP + ":8080", "-m"},
	}
	defer func() {
		_, _ = run("", ipvsadmBin, "-D", "-t", dpVIP+":80")
		_, _ = run("", ipBin, "link", "del", "dp-ipvs")
	}()
	for _, c := range setup {
		if _, err := run("", c[0], c[1:]...); err != nil {
			return err
		}
	}
	vip := net.JoinHostPort(dpVIP, "80")
	if _, err := load(vip, true, time.Second); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	for t := range dpTrials {
		if err := trials(t, []trial{{vip, true, &res.KeepAlivePlain}, {vip, false, &res.NewConnPlain}}); err != nil {
			return err
		}
	}
	return nil
}

// startBackend makes the backend namespace and serves HTTP in it on 8080:
// the listening socket is opened inside the namespace, its connections stay
// there whichever thread serves them.
func startBackend() (stop func(), err error) {
	deleteNS(dpBackendNS)
	if _, err := run("", ipBin, "netns", "add", dpBackendNS); err != nil {
		return nil, err
	}
	root := []string{
		"link add ve-dp type veth peer name eth0 netns " + dpBackendNS,
		"addr add " + nodeIP + "/32 dev ve-dp",
		"link set ve-dp up",
		"route add " + dpBackendIP + "/32 dev ve-dp src " + nodeIP,
	}
	inside := []string{
		"link set lo up",
		"addr add " + dpBackendIP + "/32 dev eth0",
		"link set eth0 up",
		"route add " + nodeIP + " dev eth0 scope link",
		"route add default via " + nodeIP + " dev eth0 src " + dpBackendIP,
	}
	if _, err := runInput(strings.Join(root, "\n")+"\n", ipBin, "-batch", "-"); err != nil {
		return nil, err
	}
	if _, err := runInput(strings.Join(inside, "\n")+"\n", ipBin, "-n", dpBackendNS, "-batch", "-"); err != nil {
		return nil, err
	}
	var l net.Listener
	if err := inNS(dpBackendNS, func() error {
		var err error
		l, err = net.Listen("tcp4", ":8080")
		return err
	}); err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveHTTP(c)
		}
	}()
	return func() {
		_ = l.Close()
		_, _ = run("", ipBin, "link", "del", "ve-dp")
		deleteNS(dpBackendNS)
	}, nil
}

// serveHTTP answers every request on c (requests are small enough to come
// in one read) until the client closes.
func serveHTTP(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	var pending []byte
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		pending = append(pending, buf[:n]...)
		for {
			i := bytes.Index(pending, []byte("\r\n\r\n"))
			if i < 0 {
				break
			}
			pending = pending[i+4:]
			if _, err := c.Write(httpResponse); err != nil {
				return
			}
		}
	}
}

// load sends GET requests to target from dpWorkers workers for d and
// returns the requests per second: on one connection per worker
// (keepAlive) or on a new connection per request.
func load(target string, keepAlive bool, d time.Duration) (float64, error) {
	var done atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
	for range dpWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, len(httpResponse))
			var c net.Conn
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for time.Now().Before(deadline) {
				var err error
				if c == nil {
					if c, err = net.DialTimeout("tcp4", target, 5*time.Second); err != nil {
						c = nil
						mu.Lock()
						firstErr = errors.Join(firstErr, err)
						mu.Unlock()
						return
					}
				}
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err = c.Write(req); err == nil {
					_, err = io.ReadFull(c, buf)
				}
				if err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
					return
				}
				done.Add(1)
				if !keepAlive {
					c.Close()
					c = nil
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(done.Load()) / d.Seconds(), nil
}

// median of a non-empty list.
func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
