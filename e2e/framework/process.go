package framework

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Command is a program to run: in a network namespace, with extra
// environment, its output appended to a log file.
type Command struct {
	Bin  string
	Args []string
	// Env is added to the framework's own environment.
	Env []string
	// NetNS is the network namespace to run in ("" is the caller's).
	NetNS string
	// LogPath receives stdout and stderr, appended after a
	// "=== <time>: <command line>" header; "" discards them.
	LogPath string
	// Stdin, if set, is the program's input.
	Stdin io.Reader
}

// Process is a started Command. It needs no testing.TB: the scenarios use it
// through Proxy and Backend, the benchmark directly.
type Process struct {
	Command
	// Started is when the process was started (just before fork).
	Started time.Time
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// StartProcess starts c.
func StartProcess(c Command) (*Process, error) {
	p := &Process{Command: c, exited: make(chan struct{})}
	p.cmd = exec.Command(c.Bin, c.Args...)
	p.cmd.Env = append(os.Environ(), c.Env...)
	p.cmd.Stdin = c.Stdin
	if c.LogPath != "" {
		logFile, err := os.OpenFile(c.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		defer logFile.Close()
		fmt.Fprintf(logFile, "=== %s: %s %q\n", time.Now().Format(time.RFC3339Nano), c.Bin, c.Args)
		p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	}
	err := InNamespace(c.NetNS, func() error {
		p.Started = time.Now()
		return p.cmd.Start()
	})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", c.Bin, err)
	}
	go func() {
		err := p.cmd.Wait()
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			err = fmt.Errorf("%s exited: %s", c.Bin, exitErr.ProcessState)
		}
		p.waitErr = err
		close(p.exited)
	}()
	return p, nil
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Running reports whether the process has not exited.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is the exit error once the process has exited (nil for status 0).
func (p *Process) Err() error {
	<-p.exited
	return p.waitErr
}

// Stop sends SIGTERM and waits for the process to exit, at most timeout;
// then it sends SIGKILL and reports that it had to. It returns the exit
// error (nil for a clean exit, also when it had exited already).
func (p *Process) Stop(timeout time.Duration) (killed bool, err error) {
	if !p.Running() {
		return false, p.waitErr
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(timeout):
		killed = true
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	return killed, p.waitErr
}

// Kill sends SIGKILL and waits for the process to be gone, as in a crash.
func (p *Process) Kill() {
	if p.Running() {
		_ = p.cmd.Process.Kill()
	}
	<-p.exited
}

// Wait waits up to timeout for the process to exit by itself and returns
// its exit error; ok is false if it is still running.
func (p *Process) Wait(timeout time.Duration) (err error, ok bool) {
	select {
	case <-p.exited:
		return p.waitErr, true
	case <-time.After(timeout):
		return nil, false
	}
}

// CPUTimes are a process's user and system CPU times, its waited-for
// children's included (kube-proxy's ipset and iptables-restore runs,
// ipvs-proxy's iptables-save).
type CPUTimes struct {
	User, System time.Duration
}

// Total is user plus system time.
func (c CPUTimes) Total() time.Duration { return c.User + c.System }

// Sub returns c - d.
func (c CPUTimes) Sub(d CPUTimes) CPUTimes { return CPUTimes{c.User - d.User, c.System - d.System} }

// clockTick is the unit of /proc/PID/stat's times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// CPU reads the process's CPU times from /proc/PID/stat (utime+cutime,
// stime+cstime); after it exited, from its rusage (the same numbers).
func (p *Process) CPU() (CPUTimes, error) {
	if !p.Running() {
		st := p.cmd.ProcessState
		return CPUTimes{st.UserTime(), st.SystemTime()}, nil
	}
	return ReadCPU(p.PID())
}

// ReadCPU reads the CPU times of process pid and its waited-for children
// from /proc/PID/stat.
func ReadCPU(pid int) (CPUTimes, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return CPUTimes{}, err
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return CPUTimes{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime, stime, cutime, cstime are fields 14-17.
	if len(f) < 15 {
		return CPUTimes{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var ticks [4]int64
	for j := range ticks {
		if ticks[j], err = strconv.ParseInt(f[11+j], 10, 64); err != nil {
			return CPUTimes{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	return CPUTimes{User: time.Duration(ticks[0]+ticks[2]) * clockTick, System: time.Duration(ticks[1]+ticks[3]) * clockTick}, nil
}

// PeakRSS returns the process's peak resident set size in bytes (VmHWM of
// /proc/PID/status), 0 once it has exited.
func (p *Process) PeakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID()))
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

// Timed is what RunTimed measured.
type Timed struct {
	Output string
	// Wall is from fork to exit; CPU is the process's and its children's.
	Wall time.Duration
	CPU  CPUTimes
}

// RunTimed runs c to completion (at most timeout) and returns its output,
// wall time and CPU times. The error names the command and has the output's
// tail.
func RunTimed(c Command, timeout time.Duration) (Timed, error) {
	var out bytes.Buffer
	var t Timed
	cmd := exec.Command(c.Bin, c.Args...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, &out, &out
	err := InNamespace(c.NetNS, func() error {
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return err
		}
		timer := time.AfterFunc(timeout, func() { _ = cmd.Process.Kill() })
		err := cmd.Wait()
		t.Wall = time.Since(start)
		if !timer.Stop() {
			err = fmt.Errorf("killed after %s", timeout)
		}
		return err
	})
	t.Output = out.String()
	if st := cmd.ProcessState; st != nil {
		t.CPU = CPUTimes{st.UserTime(), st.SystemTime()}
	}
	if err != nil {
		return t, fmt.Errorf("%s: %w\n%s", commandLine(c.Bin, c.Args), err, indent(tail(t.Output, 10)))
	}
	return t, nil
}
