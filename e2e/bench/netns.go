package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netns"
)

// Full paths of the guest's tools: Debian's busybox prefers its own applets.
const (
	ipBin       = "/usr/bin/ip"
	ipvsadmBin  = "/usr/sbin/ipvsadm"
	ipsetBin    = "/usr/sbin/ipset"
	iptablesBin = "/usr/sbin/iptables"
)

// nodeIP is the node's address in every namespace the benchmark makes.
const nodeIP = "10.10.0.1"

// netNS is a named network namespace (ip netns add) playing the node.
type netNS struct {
	Name string
}

func (n netNS) Path() string { return filepath.Join("/run/netns", n.Name) }

// newNodeNS creates a fresh namespace with lo up and a dummy eth0 holding
// nodeIP/24: each repetition gets its own, because the kernel keeps deleted
// real servers in a trash list that slows later adds in the same namespace.
func newNodeNS(name string) (netNS, error) {
	n := netNS{Name: name}
	deleteNS(name)
	if _, err := run("", ipBin, "netns", "add", name); err != nil {
		return n, err
	}
	_, err := runInput(strings.Join([]string{
		"link set lo up",
		"link add eth0 type dummy",
		"addr add " + nodeIP + "/24 dev eth0",
		"link set eth0 up",
	}, "\n")+"\n", ipBin, "-n", name, "-batch", "-")
	return n, err
}

// deleteNS deletes a namespace and kills what still runs in it; the kernel
// tears it down in the background (see settle).
func deleteNS(name string) {
	target, err := os.Stat(filepath.Join("/run/netns", name))
	if err != nil {
		return
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	for _, p := range procs {
		if st, err := os.Stat(p); err != nil || !os.SameFile(st, target) {
			continue
		}
		if pid, err := strconv.Atoi(strings.Split(p, "/")[2]); err == nil && pid != os.Getpid() {
			if proc, err := os.FindProcess(pid); err == nil {
				_ = proc.Kill()
			}
		}
	}
	_, _ = run("", ipBin, "netns", "delete", name)
}

// inNS runs fn on a thread inside namespace ns ("" for the caller's).
// Processes started there (exec forks from the calling thread) and sockets
// opened there belong to the namespace.
func inNS(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	target, err := netns.GetFromName(ns)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", ns, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("leave namespace %s: %w", ns, err) // the thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// run runs a command in namespace ns and returns its output.
func run(ns, name string, args ...string) (string, error) { return runInNS(ns, "", name, args...) }

func runInput(stdin, name string, args ...string) (string, error) {
	return runInNS("", stdin, name, args...)
}

func runInNS(ns, stdin, name string, args ...string) (string, error) {
	var out bytes.Buffer
	err := inNS(ns, func() error {
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Stdout, cmd.Stderr = &out, &out
		return cmd.Run()
	})
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// timedRun runs a command with a file as stdin in namespace ns and returns
// its wall time, process start included.
func timedRun(ns, stdinPath, name string, args ...string) (time.Duration, error) {
	in, err := os.Open(stdinPath)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	var out bytes.Buffer
	var took time.Duration
	err = inNS(ns, func() error {
		cmd := exec.Command(name, args...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = in, &out, &out
		start := time.Now()
		err := cmd.Run()
		took = time.Since(start)
		return err
	})
	if err != nil {
		return took, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(out.String(), 5))
	}
	return took, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

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
// kernel worker for seconds; the garbage of the last run is collected), at
// most limit. It returns how long it waited.
func settle(limit time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < limit {
		i0, t0 := cpuIdle()
		time.Sleep(500 * time.Millisecond)
		i1, t1 := cpuIdle()
		if t1 > t0 && float64(i1-i0)/float64(t1-t0) >= 0.9 {
			break
		}
	}
	return time.Since(start)
}

// vmHWM returns a process's peak resident set size in bytes (VmHWM).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
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
