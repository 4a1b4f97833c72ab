package iptables

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// fakeTool writes a shell script standing in for a tool.
func fakeTool(t *testing.T, dir, name, script string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSaveRunsEveryTable(t *testing.T) {
	dir := t.TempDir()
	save := fakeTool(t, dir, "save", `echo "*$2"; echo "args: $*"; echo COMMIT`+"\n")
	ipt := New(Config{IPv6: Tools{Save: save}})
	out, err := ipt.Save(state.IPv6)
	if err != nil {
		t.Fatal(err)
	}
	want := "*nat\nargs: -t nat\nCOMMIT\n*filter\nargs: -t filter\nCOMMIT\n*mangle\nargs: -t mangle\nCOMMIT\n"
	if out != want {
		t.Errorf("Save = %q, want %q", out, want)
	}
}

func TestRestoreUsesStdinAndFixedArgs(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	restore := fakeTool(t, dir, "restore", `echo "$*" > `+log+`; cat >> `+log+"\n")
	ipt := New(Config{IPv4: Tools{Restore: restore}})
	input := "*nat\n-A X -m comment --comment \"$(rm -rf /)\" -j ACCEPT\nCOMMIT\n"
	if err := ipt.Restore(state.IPv4, input); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(log)
	if string(b) != "--noflush --wait\n"+input {
		t.Errorf("restore saw %q", b)
	}
}

func TestErrorsCarryStderr(t *testing.T) {
	dir := t.TempDir()
	restore := fakeTool(t, dir, "restore", "echo 'iptables-restore: line 2 failed' >&2; exit 1\n")
	err := New(Config{IPv4: Tools{Restore: restore}}).Restore(state.IPv4, "x")
	var exit *exec.ExitError
	if err == nil || !strings.Contains(err.Error(), "line 2 failed") || !errors.As(err, &exit) {
		t.Errorf("Restore = %v, want the tool's stderr and its exit status", err)
	}
}

func TestMissingTool(t *testing.T) {
	_, err := New(Config{IPv4: Tools{Save: "ipvs-proxy-no-such-iptables-save"}}).Save(state.IPv4)
	if !errors.Is(err, exec.ErrNotFound) || !strings.Contains(err.Error(), "install the iptables package") {
		t.Errorf("Save with a missing tool = %v", err)
	}
}

func TestUnknownFamily(t *testing.T) {
	if _, err := New(Config{}).Save(0); err == nil {
		t.Error("Save(0) succeeded")
	}
}
