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
	API               []*APIResult          `json:",omitempty"`
	Datapath          *DatapathResult       `json:",omitempty"`
	RulesBackends     []*RulesBackendResult `json:",omitempty"`
	Errors            []string              `json:",omitempty"`
}

// guest is the benchmark run inside the VM.
type guest struct {
	proxyBin, kubeProxyBin, selfBin, kubeconfig string
	work, logs, configPath                      string
	out                                         string
	res                                         *Results
}

// guestFlags are `bench guest`'s settings.
type guestFlags struct {
	sizes, changeAt, countAt, apiSizes, rulesSizes string
	repsAt                                         string
	reps, rounds, countRounds, kpRounds            int
	kpCap                                          time.Duration
	datapath                                       bool
}

// guestCmd runs every measurement in one boot and writes the results as
// JSON after each phase, so that a failure keeps what was measured.
func guestCmd(args []string) error {
	fs := flag.NewFlagSet("guest", flag.ExitOnError)
	var f guestFlags
	out := fs.String("out", "results.json", "results file")
	fs.StringVar(&f.sizes, "n", "100,1000,3000,10000,30000", "numbers of Services")
	fs.IntVar(&f.reps, "reps", 3, "cold starts of the floor, the tools and ipvs-proxy per N")
	fs.StringVar(&f.repsAt, "reps-at", "", "other numbers of cold starts at some Ns, e.g. 30000=1 (a shorter run)")
	fs.StringVar(&f.changeAt, "changes-at", "100,1000,10000", "Ns with change tests")
	fs.IntVar(&f.rounds, "rounds", 15, "timed rounds of the four changes (their times are a few ms: medians of many)")
	fs.StringVar(&f.countAt, "count-at", "1000", "Ns with a cold start, changes and a resync counted by a netlink monitor")
	fs.IntVar(&f.countRounds, "count-rounds", 2, "rounds of the four changes counted by the netlink monitor")
	fs.StringVar(&f.apiSizes, "api-n", "1000,10000", "Ns of the comparison with kube-proxy through the API server (empty: none)")
	fs.IntVar(&f.kpRounds, "kp-rounds", 10, "rounds of the four changes for each daemon against the API server")
	fs.DurationVar(&f.kpCap, "kube-proxy-cap", time.Hour, "longest wait for kube-proxy's first full sync")
	fs.BoolVar(&f.datapath, "datapath", true, "measure requests/second through a VIP")
	fs.StringVar(&f.rulesSizes, "rules-n", "10000", "Ns at which the two rules backends are compared (empty: none)")
	g := &guest{work: "/tmp/bench"}
	fs.StringVar(&g.proxyBin, "ipvs-proxy", "/tmp/bin/ipvs-proxy", "ipvs-proxy binary")
	fs.StringVar(&g.kubeProxyBin, "kube-proxy", "/tmp/bin/kube-proxy", "kube-proxy binary")
	fs.StringVar(&g.kubeconfig, "kubeconfig", "", "kubeconfig of the API server (empty: no API runs)")
	logs := fs.String("logs", "", "directory for the daemons' logs (default: under the work directory)")
	_ = fs.Parse(args)

	var err error
	if g.selfBin, err = os.Executable(); err != nil {
		return err
	}
	g.out, g.logs = *out, *logs
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
	g.run(&f)
	g.res.Finished = time.Now()
	if len(g.res.Errors) > 0 {
		return fmt.Errorf("%d phases failed", len(g.res.Errors))
	}
	return nil
}

// run runs the phases in order: scale, datapath, the API server runs.
func (g *guest) run(f *guestFlags) {
	withChanges, counted := set(ints(f.changeAt)), set(ints(f.countAt))
	repsAt := pairs(f.repsAt)
	for _, n := range ints(f.sizes) {
		reps, ok := repsAt[n]
		if !ok {
			reps = f.reps
		}
		res, err := g.runScale(n, reps, scaleOptions{rounds: f.rounds * b2i(withChanges[n]), counted: counted[n], countRounds: f.countRounds})
		if res != nil {
			g.res.Scale = append(g.res.Scale, res)
		}
		g.fail(fmt.Sprintf("N=%d", n), err)
		g.save()
	}
	for _, n := range ints(f.rulesSizes) {
		res, err := g.runRulesBackends(n, min(f.rounds, 5))
		g.res.RulesBackends = append(g.res.RulesBackends, res...)
		g.fail(fmt.Sprintf("rules backends N=%d", n), err)
		g.save()
	}
	if f.datapath {
		res, err := g.runDatapath()
		g.res.Datapath = res
		g.fail("datapath", err)
		g.save()
	}
	if g.kubeconfig == "" {
		return
	}
	for _, n := range ints(f.apiSizes) {
		res, err := g.runAPI(n, f.kpRounds, f.kpCap)
		if res != nil {
			g.res.API = append(g.res.API, res)
		}
		g.fail(fmt.Sprintf("API N=%d", n), err)
		g.save()
	}
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

// pairs reads "n=v,n=v" (entries that are not two numbers are skipped).
func pairs(s string) map[int]int {
	m := map[int]int{}
	for _, f := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(f, "=")
		n, err1 := strconv.Atoi(strings.TrimSpace(k))
		r, err2 := strconv.Atoi(strings.TrimSpace(v))
		if err1 == nil && err2 == nil {
			m[n] = r
		}
	}
	return m
}

func set(xs []int) map[int]bool {
	m := map[int]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
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
