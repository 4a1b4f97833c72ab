package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// The datapath scenario: one backend (the framework's, its own process in
// its own namespace behind a veth), one ClusterIP Service in front of it,
// and a client process (`bench load`) in the root namespace: no two of them
// share a Go runtime.
const (
	dpBackend   = "dp-backend"
	dpBackendIP = "10.244.0.2"
	dpVIP       = "10.96.50.1"
	dpWorkers   = 4
	dpTrial     = 5 * time.Second
	dpTrials    = 5
)

// dpService is the Service: port 80 to the backend's line server.
const dpService = `apiVersion: v1
kind: Service
metadata: {name: dp, namespace: bench}
spec:
  clusterIP: ` + dpVIP + `
  ports: [{name: p, protocol: TCP, port: 80, targetPort: 9000}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dp-1, namespace: bench, labels: {kubernetes.io/service-name: dp}}
addressType: IPv4
ports: [{name: p, protocol: TCP, port: 9000}]
endpoints: [{addresses: [` + dpBackendIP + `], conditions: {ready: true}, nodeName: node-2}]
`

// DatapathResult holds requests/second per trial. Each comparison has its
// own direct baseline, measured in the same phase, interleaved with it.
type DatapathResult struct {
	Workers int
	Trial   time.Duration
	// Through ipvs-proxy's VIP (its rules, sets and sysctls in place), and
	// direct to the backend meanwhile.
	KeepAliveDirect, KeepAliveVIP []float64
	NewConnDirect, NewConnVIP     []float64
	// The same virtual server made by hand (ipvsadm, a dummy link) after
	// ipvs-proxy's cleanup and the sysctls back at the kernel's defaults:
	// what IPVS alone costs; and direct meanwhile.
	KeepAlivePlainDirect, KeepAlivePlain []float64
	NewConnPlainDirect, NewConnPlain     []float64
}

func (g *guest) runDatapath() (*DatapathResult, error) {
	if err := framework.Reset(); err != nil {
		return nil, err
	}
	b, err := framework.StartBackend(dpBackend, dpBackendIP, filepath.Join(g.logs, "backend-datapath.log"), true)
	if err != nil {
		return nil, err
	}
	defer b.Delete()
	dir := filepath.Join(g.work, "datapath")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, "svc.yaml"), dpService); err != nil {
		return nil, err
	}
	d, err := g.startDaemon("", "ipvs-proxy-datapath", time.Minute, framework.Options{ManifestDir: dir, ConfigFile: g.configPath})
	if err != nil {
		return nil, err
	}
	if _, err := d.next(5*time.Minute, framework.IsFull); err != nil {
		_, _ = d.proc.Stop(20 * time.Second)
		return nil, err
	}
	res := &DatapathResult{Workers: dpWorkers, Trial: dpTrial}
	direct, vip := net.JoinHostPort(dpBackendIP, "9000"), net.JoinHostPort(dpVIP, "80")
	err = g.trials([]trial{{direct, true, &res.KeepAliveDirect}, {vip, true, &res.KeepAliveVIP},
		{direct, false, &res.NewConnDirect}, {vip, false, &res.NewConnVIP}})
	_, _ = d.proc.Stop(20 * time.Second)
	if err != nil {
		return res, err
	}
	if _, err := run("", g.proxyBin, "cleanup"); err != nil {
		return res, err
	}
	if err := framework.RestoreSysctls(); err != nil {
		return res, err
	}
	if err := plainIPVS(); err != nil {
		return res, err
	}
	defer func() {
		_, _ = run("", framework.IPVSAdmBin, "-D", "-t", vip)
		_, _ = run("", framework.IPBin, "link", "del", "dp-ipvs")
	}()
	err = g.trials([]trial{{direct, true, &res.KeepAlivePlainDirect}, {vip, true, &res.KeepAlivePlain},
		{direct, false, &res.NewConnPlainDirect}, {vip, false, &res.NewConnPlain}})
	return res, err
}

// plainIPVS makes the VIP by hand: a dummy link holding it and one
// masquerading virtual server, with no iptables rule and no ipset.
func plainIPVS() error {
	for _, c := range [][]string{
		{framework.IPBin, "link", "add", "dp-ipvs", "type", "dummy"},
		{framework.IPBin, "addr", "add", dpVIP + "/32", "dev", "dp-ipvs"},
		{framework.IPVSAdmBin, "-A", "-t", dpVIP + ":80", "-s", "rr"},
		{framework.IPVSAdmBin, "-a", "-t", dpVIP + ":80", "-r", dpBackendIP + ":9000", "-m"},
	} {
		if _, err := run("", c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// trial is one load run of a round, and where its result goes.
type trial struct {
	target    string
	keepAlive bool
	out       *[]float64
}

// trials runs dpTrials rounds of the given trials, interleaved, after one
// warm-up of each target.
func (g *guest) trials(ts []trial) error {
	for _, c := range ts[:2] {
		if _, err := g.load(c.target, c.keepAlive, time.Second); err != nil {
			return fmt.Errorf("warm-up of %s: %w", c.target, err)
		}
	}
	for round := range dpTrials {
		for _, c := range ts {
			settle(10 * time.Second)
			rps, err := g.load(c.target, c.keepAlive, dpTrial)
			if err != nil {
				return err
			}
			*c.out = append(*c.out, rps)
			log.Printf("datapath trial %d: %s keep-alive=%v: %.0f requests/s", round, c.target, c.keepAlive, rps)
		}
	}
	return nil
}

// load runs the client process (`bench load`) and returns its requests/second.
func (g *guest) load(target string, keepAlive bool, d time.Duration) (float64, error) {
	t, err := framework.RunTimed(framework.Command{Bin: g.selfBin, Args: []string{"load", "-target", target,
		"-keepalive=" + fmt.Sprint(keepAlive), "-workers", fmt.Sprint(dpWorkers), "-d", d.String()}}, d+time.Minute)
	if err != nil {
		return 0, err
	}
	var r loadResult
	if err := json.Unmarshal([]byte(t.Output), &r); err != nil {
		return 0, fmt.Errorf("load output %q: %w", t.Output, err)
	}
	return r.RPS, nil
}
