package sysctl

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "net/ipv4/conf/eth0.100"), 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"net/ipv4/ip_forward":                   "0\n",
		"net/ipv4/ip_local_port_range":          "32768\t60999\n",
		"net/ipv4/conf/eth0.100/route_localnet": "0\n",
	} {
		if err := os.WriteFile(filepath.Join(root, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestGetSet(t *testing.T) {
	s := New(Config{Root: tree(t)})
	if v, err := s.Get("net/ipv4/ip_local_port_range"); err != nil || v != "32768\t60999" {
		t.Errorf("Get = %q, %v", v, err)
	}
	if err := s.Set("net/ipv4/conf/eth0.100/route_localnet", "1"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get("net/ipv4/conf/eth0.100/route_localnet"); err != nil || v != "1" {
		t.Errorf("after Set: %q, %v", v, err)
	}
}

func TestMissingIPVSKeySaysLoadIPVS(t *testing.T) {
	s := New(Config{Root: tree(t)})
	_, err := s.Get("net/ipv4/vs/conntrack")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "ip_vs module is not loaded") {
		t.Errorf("Get = %v", err)
	}
	err = s.Set("net/ipv4/vs/conntrack", "1")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "modprobe ip_vs") {
		t.Errorf("Set = %v", err)
	}
	if err := s.Set("net/ipv4/nope", "1"); !errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "ip_vs") {
		t.Errorf("Set of another missing key = %v", err)
	}
}

func TestRejectsKeysOutsideTheTree(t *testing.T) {
	s := New(Config{Root: tree(t)})
	for _, k := range []string{"", "/etc/passwd", "../etc/passwd", "net/../../x", "net//ipv4", ".."} {
		if _, err := s.Get(k); err == nil {
			t.Errorf("Get(%q) succeeded", k)
		}
	}
}

func TestRealProcSys(t *testing.T) {
	v, err := New(Config{}).Get("net/ipv4/ip_forward")
	if err != nil || (v != "0" && v != "1") {
		t.Errorf("Get(net/ipv4/ip_forward) = %q, %v", v, err)
	}
}
