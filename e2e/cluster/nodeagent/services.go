package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/cluster/nodeapi"
)

// services runs containerd and the kubelet.
type services struct {
	cfg                 *nodeapi.Config
	reaper              *reaper
	containerd, kubelet *exec.Cmd
}

func (s *services) start() error {
	var err error
	if s.containerd, err = s.spawn("containerd", s.cfg.Containerd); err != nil {
		return err
	}
	if err := s.waitContainerd(); err != nil {
		return err
	}
	log.Printf("containerd answers at %s", uptime())
	if err := s.importImages(); err != nil {
		return err
	}
	log.Printf("images imported at %s", uptime())
	if s.kubelet, err = s.spawn("kubelet", s.cfg.Kubelet); err != nil {
		return err
	}
	log.Printf("kubelet started at %s", uptime())
	return nil
}

// spawn starts a service with its output appended to share/logs/NAME.log.
func (s *services) spawn(name string, argv []string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("%s: no command line in %s", name, nodeapi.ConfigFile)
	}
	out, err := os.OpenFile(filepath.Join(shareDir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	fmt.Fprintf(out, "=== boot: %s\n", strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := s.reaper.start(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return cmd, nil
}

func (s *services) waitContainerd() error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if s.reaper.exec([]string{"ctr", "version"}, "", 10*time.Second).ExitCode == 0 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("containerd did not answer within 2 minutes")
}

// importImages imports every share/images/*.tar into containerd's k8s.io namespace unless this disk already has
// it: a marker named after the archive's name, size and time is kept on the disk.
func (s *services) importImages() error {
	archives, err := filepath.Glob(filepath.Join(shareDir, "images", "*.tar"))
	if err != nil {
		return err
	}
	markers := "/var/lib/containerd/.imported"
	if err := os.MkdirAll(markers, 0o755); err != nil {
		return err
	}
	for _, a := range archives {
		info, err := os.Stat(a)
		if err != nil {
			return err
		}
		marker := filepath.Join(markers, fmt.Sprintf("%s-%d-%d", filepath.Base(a), info.Size(), info.ModTime().Unix()))
		if _, err := os.Stat(marker); err == nil {
			continue
		}
		res := s.reaper.exec([]string{"ctr", "-n", "k8s.io", "images", "import", a}, "", 5*time.Minute)
		if res.ExitCode != 0 {
			return fmt.Errorf("ctr images import %s: exit %d: %s%s", a, res.ExitCode, res.Stderr, res.Error)
		}
		log.Printf("imported %s: %s", filepath.Base(a), strings.TrimSpace(res.Stdout))
		if err := os.WriteFile(marker, nil, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// stop ends the kubelet, then containerd (whose shims, and the containers, go with the machine), as a node's
// shutdown does.
func (s *services) stop() {
	for _, c := range []*exec.Cmd{s.kubelet, s.containerd} {
		if c == nil || c.Process == nil {
			continue
		}
		_ = c.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.reaper.done(c.Process.Pid):
		case <-time.After(10 * time.Second):
			_ = c.Process.Kill()
		}
	}
}
