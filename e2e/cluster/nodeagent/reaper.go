package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/cluster/nodeapi"
)

// reaper is PID 1's child reaping: it waits for every child, its own and orphans, and tells whoever started a
// process when it has exited. Commands are therefore started here and never waited for with exec.Cmd.Wait,
// which would race with it.
type reaper struct {
	mu      sync.Mutex
	waiting map[int]chan unix.WaitStatus // by pid: processes started here that have not exited
	exited  map[int]unix.WaitStatus      // exits seen before start registered the pid
}

func newReaper() *reaper {
	return &reaper{waiting: map[int]chan unix.WaitStatus{}, exited: map[int]unix.WaitStatus{}}
}

// run reaps children on every SIGCHLD until the machine stops.
func (r *reaper) run() {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGCHLD)
	for range sigs {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			r.mu.Lock()
			if ch, ok := r.waiting[pid]; ok {
				ch <- ws
				close(ch)
				delete(r.waiting, pid)
			} else {
				r.exited[pid] = ws
			}
			r.mu.Unlock()
		}
	}
}

// start starts cmd and registers it; done(pid) tells when it has exited.
func (r *reaper) start(cmd *exec.Cmd) error {
	r.mu.Lock()
	defer r.mu.Unlock() // held across Start, so the exit cannot be reaped before the pid is registered
	if err := cmd.Start(); err != nil {
		return err
	}
	ch := make(chan unix.WaitStatus, 1)
	if ws, ok := r.exited[cmd.Process.Pid]; ok {
		delete(r.exited, cmd.Process.Pid)
		ch <- ws
		close(ch)
	} else {
		r.waiting[cmd.Process.Pid] = ch
	}
	return nil
}

// done returns a channel closed when pid (started here) has exited; it yields the wait status first.
func (r *reaper) done(pid int) <-chan unix.WaitStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch, ok := r.waiting[pid]; ok {
		return ch
	}
	ch := make(chan unix.WaitStatus)
	close(ch)
	return ch
}

// exec runs argv to completion (or until timeout, then kills it) and returns its output and exit code.
func (r *reaper) exec(argv []string, stdin string, timeout time.Duration) nodeapi.ExecResponse {
	fail := func(err error) nodeapi.ExecResponse { return nodeapi.ExecResponse{ExitCode: -1, Error: err.Error()} }
	if len(argv) == 0 {
		return nodeapi.ExecResponse{ExitCode: -1, Error: "no command"}
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader([]byte(stdin))
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	startErr := r.start(cmd)
	outW.Close()
	errW.Close()
	if startErr != nil {
		outR.Close()
		errR.Close()
		return fail(startErr)
	}
	var stdout, stderr bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _, _ = io.Copy(&stdout, outR); outR.Close() }()
	go func() { defer wg.Done(); _, _ = io.Copy(&stderr, errR); errR.Close() }()
	res := nodeapi.ExecResponse{ExitCode: -1}
	select {
	case ws := <-r.done(cmd.Process.Pid):
		if ws.Exited() {
			res.ExitCode = ws.ExitStatus()
		} else {
			res.Error = "killed by " + ws.Signal().String()
		}
	case <-time.After(timeout):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-r.done(cmd.Process.Pid)
		res.Error = "timed out after " + timeout.String()
	}
	// A daemon the command left behind may hold the pipes open: read what is there, then stop waiting.
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(2 * time.Second):
	}
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	return res
}
