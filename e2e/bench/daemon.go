package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// process is a daemon (ipvs-proxy or kube-proxy) started in a namespace,
// its output in a log file.
type process struct {
	Name    string
	Start   time.Time
	LogPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *logFollower
}

// startProcess starts bin in namespace ns with its output in logPath and
// env added to the environment.
func startProcess(ns, logPath string, env []string, bin string, args ...string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	p := &process{Name: bin, LogPath: logPath, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.Env = append(os.Environ(), env...)
	err = inNS(ns, func() error {
		p.Start = time.Now()
		return p.cmd.Start()
	})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	p.log = &logFollower{path: logPath}
	return p, nil
}

// PID is the process id.
func (p *process) PID() int { return p.cmd.Process.Pid }

// Running reports whether the process has not exited.
func (p *process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM, then SIGKILL after 20 s.
func (p *process) Stop() {
	if !p.Running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// syncLine is one "synced" (or "sync incomplete") line of ipvs-proxy's JSON log.
type syncLine struct {
	TS          time.Time
	Msg         string
	Type        string
	Services    int
	Ops         int
	Failed      int
	Messages    int
	Took        time.Duration
	SinceChange time.Duration
}

func parseSyncLine(b []byte) (syncLine, bool) {
	var raw struct {
		TS                              float64 // kube-proxy's JSON format: Unix milliseconds
		Msg, Type, Took, SinceChange    string
		Services, Ops, Failed, Messages int
	}
	if !bytes.Contains(b, []byte(`"type"`)) || json.Unmarshal(b, &raw) != nil {
		return syncLine{}, false
	}
	if raw.Msg != "synced" && raw.Msg != "sync incomplete; a full resync is pending" {
		return syncLine{}, false
	}
	s := syncLine{Msg: raw.Msg, Type: raw.Type, Services: raw.Services, Ops: raw.Ops, Failed: raw.Failed, Messages: raw.Messages}
	if raw.TS <= 0 {
		return syncLine{}, false
	}
	s.TS = time.UnixMicro(int64(raw.TS * 1000))
	s.Took, _ = time.ParseDuration(raw.Took)
	s.SinceChange, _ = time.ParseDuration(raw.SinceChange)
	return s, true
}

// logFollower reads the sync lines a log file gains. Reading the appended
// bytes every 20 ms costs next to nothing, unlike polling the kernel.
type logFollower struct {
	path   string
	offset int64
	rest   []byte
	queue  []syncLine
}

func (f *logFollower) poll() {
	file, err := os.Open(f.path)
	if err != nil {
		return
	}
	defer file.Close()
	if _, err := file.Seek(f.offset, io.SeekStart); err != nil {
		return
	}
	b, _ := io.ReadAll(bufio.NewReader(file))
	f.offset += int64(len(b))
	b = append(f.rest, b...)
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		if s, ok := parseSyncLine(b[:i]); ok {
			f.queue = append(f.queue, s)
		}
		b = b[i+1:]
	}
	f.rest = append([]byte(nil), b...)
}

// take returns the next logged sync line for which keep is true, skipping
// others, without waiting.
func (p *process) take(keep func(syncLine) bool) (syncLine, bool) {
	p.log.poll()
	for len(p.log.queue) > 0 {
		s := p.log.queue[0]
		p.log.queue = p.log.queue[1:]
		if keep(s) {
			return s, true
		}
	}
	return syncLine{}, false
}

// next waits up to timeout for the next sync line for which keep is true.
func (p *process) next(timeout time.Duration, keep func(syncLine) bool) (syncLine, error) {
	deadline := time.Now().Add(timeout)
	for {
		running := p.Running()
		if s, ok := p.take(keep); ok {
			return s, nil
		}
		switch {
		case !running:
			return syncLine{}, fmt.Errorf("%s exited; log %s:\n%s", p.Name, p.LogPath, tailFile(p.LogPath, 15))
		case time.Now().After(deadline):
			return syncLine{}, fmt.Errorf("no such sync within %s; log %s:\n%s", timeout, p.LogPath, tailFile(p.LogPath, 15))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// drain discards the sync lines logged so far.
func (p *process) drain() {
	p.log.poll()
	p.log.queue = nil
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	return tail(string(b), n)
}
