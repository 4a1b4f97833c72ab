package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Results is everything one boot measured; `bench report` renders it.
type Results struct {
	Started, Finished time.Time
	Kernel            string
	CPUs              int
	MemoryMiB         int
	Scale             []*ScaleResult
	Datapath          *DatapathResult       `json:",omitempty"`
	API               []*APIResult          `json:",omitempty"`
	RulesBackends     []*RulesBackendResult `json:",omitempty"`
	Errors            []string              `json:",omitempty"`
}

// guest is the benchmark run inside the VM.
type guest struct {
	proxyBin, kubeProxyBin, kubeconfig string
	work, logs, configPath             string
	out                                string
	res                                *Results
}

// guestCmd runs every measurement in one boot and writes the results as
// JSON after each phase, so that a failure keeps what was measured.
func guestCmd(args []string) error {
	fs := flag.NewFlagSet("guest", flag.ExitOnError)
	out := fs.String("out", "results.json", "results file")
	sizes := fs.String("n", "100,1000,10000", "numbers of Services")
	changeAt := fs.String("changes-at", "100,1000,10000", "Ns with change tests")
	reps := fs.Int("reps", 3, "cold starts of the tools and of ipvs-proxy per N (2 at 10,000 and more)")
	rounds := fs.Int("rounds", 15, "rounds of the four change tests (their times are a few ms: medians of many)")
	apiSizes := fs.String("api-n", "1000", "Ns for the runs against the API server (empty: none)")
	kpCap := fs.Duration("kube-proxy-cap", 15*time.Minute, "longest wait for kube-proxy's first full sync")
	datapath := fs.Bool("datapath", true, "measure requests/second through a VIP")
	rulesSizes := fs.String("rules-n", "10000", "Ns at which the two rules backends are compared (empty: none)")
	g := &guest{work: "/tmp/bench"}
	fs.StringVar(&g.proxyBin, "ipvs-proxy", "/tmp/bin/ipvs-proxy", "ipvs-proxy binary")
	fs.StringVar(&g.kubeProxyBin, "kube-proxy", "/tmp/bin/kube-proxy", "kube-proxy binary")
	fs.StringVar(&g.kubeconfig, "kubeconfig", "", "kubeconfig of the API server (empty: no API runs)")
	logs := fs.String("logs", "", "directory for the daemons' logs (default: under the work directory)")
	_ = fs.Parse(args)

	g.out = *out
	g.logs = *logs
	if g.logs == "" {
		g.logs = filepath.Join(g.work, "logs")
	}
	for _, d := range []string{g.work, g.logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	g.configPath = filepath.Join(g.work, "config.yaml")
	if err := os.WriteFile(g.configPath, []byte(proxyConfig), 0o644); err != nil {
		return err
	}
	g.res = &Results{Started: time.Now(), Kernel: kernelRelease(), CPUs: runtime.NumCPU(), MemoryMiB: memoryMiB()}
	defer g.save()

	withChanges := map[int]bool{}
	for _, n := range ints(*changeAt) {
		withChanges[n] = true
	}
	for _, n := range ints(*sizes) {
		r, roundsHere := *reps, 0
		if n >= 10000 {
			r = min(r, 2)
		}
		if withChanges[n] {
			roundsHere = *rounds
		}
		res, err := g.runScale(n, r, roundsHere)
		if res != nil {
			g.res.Scale = append(g.res.Scale, res)
		}
		g.fail(fmt.Sprintf("N=%d", n), err)
		g.save()
		settle(2 * time.Minute)
	}
	for _, n := range ints(*rulesSizes) {
		res, err := g.runRulesBackends(n, min(*rounds, 5))
		g.res.RulesBackends = append(g.res.RulesBackends, res...)
		g.fail(fmt.Sprintf("rules backends N=%d", n), err)
		g.save()
	}
	if *datapath {
		res, err := g.runDatapath()
		g.res.Datapath = res
		g.fail("datapath", err)
		g.save()
	}
	if g.kubeconfig != "" {
		for _, n := range ints(*apiSizes) {
			res, err := g.runAPI(n, *kpCap)
			if res != nil {
				g.res.API = append(g.res.API, res)
			}
			g.fail(fmt.Sprintf("API N=%d", n), err)
			g.save()
		}
	}
	g.res.Finished = time.Now()
	if len(g.res.Errors) > 0 {
		return fmt.Errorf("%d phases failed", len(g.res.Errors))
	}
	return nil
}

func (g *guest) fail(phase string, err error) {
	if err != nil {
		log.Printf("%s FAILED: %v", phase, err)
		g.res.Errors = append(g.res.Errors, phase+": "+err.Error())
	}
}

func (g *guest) save() {
	b, err := json.MarshalIndent(g.res, "", "  ")
	if err == nil {
		err = os.WriteFile(g.out, b, 0o644)
	}
	if err != nil {
		log.Printf("cannot write %s: %v", g.out, err)
	}
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func kernelRelease() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

func memoryMiB() int {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return kb >> 10
		}
	}
	return 0
}
