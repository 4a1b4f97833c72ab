package main

import (
	"bufio"
	"bytes"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// cpuIdle returns the idle and total jiffies of all CPUs (/proc/stat).
func cpuIdle() (idle, total uint64) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0
	}
	for i, field := range strings.Fields(sc.Text())[1:] {
		v, _ := strconv.ParseUint(field, 10, 64)
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	return idle, total
}

// settle waits until the guest's CPUs are at least 90% idle over half a
// second (a deleted namespace with 100,000 real servers is torn down by a
// kernel worker for seconds; a daemon may still be collecting garbage), at
// most limit, and says so when they never were. It returns how long it
// waited.
func settle(limit time.Duration) time.Duration {
	start := time.Now()
	idle := 0.0
	var p0, p1 map[string]int64
	for time.Since(start) < limit {
		i0, t0 := cpuIdle()
		p0 = procTicks()
		time.Sleep(500 * time.Millisecond)
		i1, t1 := cpuIdle()
		p1 = procTicks()
		if t1 > t0 {
			idle = float64(i1-i0) / float64(t1-t0)
		}
		if idle >= 0.9 {
			return time.Since(start)
		}
	}
	var busy []string
	for name, t := range p1 {
		if d := t - p0[name]; d > 0 {
			busy = append(busy, fmt.Sprintf("%s %d", name, d))
		}
	}
	sort.Strings(busy)
	log.Printf("settle: the CPUs were still %.0f%% busy after %s, going on; ticks in the last half second: %s",
		(1-idle)*100, limit, strings.Join(busy, ", "))
	return time.Since(start)
}

// procTicks returns the CPU ticks of every process by "pid/command".
func procTicks() map[string]int64 {
	out := map[string]int64{}
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if i < 0 || j < i {
			continue
		}
		f := strings.Fields(string(b[j+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		out[strings.Split(p, "/")[2]+"/"+string(b[i+1:j])] = u + s
	}
	return out
}

// ipvsCounts counts virtual and real servers in a process's namespace from
// /proc/PID/net/ip_vs (the calling thread's with pid 0): one sequential
// read, the cheapest full view there is.
func ipvsCounts(pid int) (vs, rs int, err error) {
	path := "/proc/thread-self/net/ip_vs"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/net/ip_vs", pid)
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for n := 0; ; n++ {
		line, err := r.ReadSlice('\n')
		if n >= 3 && len(line) > 0 {
			if bytes.HasPrefix(line, []byte("  -> ")) {
				rs++
			} else {
				vs++
			}
		}
		if err != nil {
			return vs, rs, nil
		}
	}
}

// run runs a command in namespace ns and returns its output.
func run(ns, name string, args ...string) (string, error) {
	t, err := framework.RunTimed(framework.Command{Bin: name, Args: args, NetNS: ns}, 10*time.Minute)
	return t.Output, err
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o644) }
