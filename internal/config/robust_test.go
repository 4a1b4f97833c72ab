package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The configuration file is read like a manifest: a FIFO or a symlink to
// /dev/zero is refused at once instead of blocking or reading forever, and
// YAML aliases may not expand it past a bound.
func TestLoadFileRefusesHostileFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.conf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero.conf")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	var bomb strings.Builder
	bomb.WriteString("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n")
	bomb.WriteString("x0: &x0 \"" + strings.Repeat("x", 50_000) + "\"\n")
	bomb.WriteString("x1: &x1 [*x0, *x0, *x0, *x0, *x0, *x0, *x0, *x0, *x0, *x0]\n")
	bomb.WriteString("x2: &x2 [*x1, *x1, *x1, *x1, *x1, *x1, *x1, *x1, *x1, *x1]\n")
	bombFile := filepath.Join(dir, "bomb.conf")
	if err := os.WriteFile(bombFile, []byte(bomb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.conf")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{fifo: "not a regular file (a FIFO)", zero: "not a regular file (a character device)",
		bombFile: "aliases expand it to more than", big: "over the limit"} {
		done := make(chan error, 1)
		go func() { _, _, err := LoadFile(file); done <- err }()
		if err := <-done; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", filepath.Base(file), err, want)
		}
	}
}
