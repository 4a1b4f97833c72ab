package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// process is one child process, etcd or kube-apiserver, with its output going to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // how it exited; read only after done is closed
}

// startProcess runs path with args, its stdout and stderr written to logPath (replacing an older log).
func startProcess(name, path string, args []string, logPath string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM, waits up to grace for the exit, then kills. It returns once the process is gone.
func (p *process) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exitError describes how the process exited, with the end of its log. Call it after done is closed.
func (p *process) exitError() error {
	return fmt.Errorf("%s exited (%w); end of %s:\n%s", p.name, p.err, p.logPath, p.logTail(20))
}

// logTail returns the last n lines of the log.
func (p *process) logTail(n int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// addressInUse reports whether the process failed because a port was taken between freePort and its bind.
func (p *process) addressInUse() bool {
	data, _ := os.ReadFile(p.logPath)
	return bytes.Contains(data, []byte("address already in use"))
}

// waitHealthy sends the requests newReq makes until one is answered 200, failing early when p exits.
func waitHealthy(ctx context.Context, client *http.Client, newReq func() (*http.Request, error), p *process) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		req, err := newReq()
		if err != nil {
			return err
		}
		resp, err := client.Do(req.WithContext(ctx))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return p.exitError()
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy at %s (last: %s): %w; end of %s:\n%s",
				p.name, req.URL, last, ctx.Err(), p.logPath, p.logTail(20))
		case <-tick.C:
		}
	}
}
