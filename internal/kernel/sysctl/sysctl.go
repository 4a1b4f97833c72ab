// Package sysctl reads and writes kernel parameters under /proc/sys: the real
// implementation of kernel.Sysctl. Parameters under net/ belong to the
// network namespace of the process.
package sysctl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
)

// DefaultRoot is where the kernel exposes its parameters.
const DefaultRoot = "/proc/sys"

var _ kernel.Sysctl = (*Sysctl)(nil)

// Config says where the parameters are.
type Config struct {
	// Root is the sysctl tree (DefaultRoot if empty); tests point it at a
	// directory of their own.
	Root string
}

// Sysctl reads and writes parameters. It holds no state.
type Sysctl struct{ root string }

// New returns a Sysctl for cfg; it does no I/O.
func New(cfg Config) *Sysctl {
	root := cfg.Root
	if root == "" {
		root = DefaultRoot
	}
	return &Sysctl{root: root}
}

// Get returns a parameter's value without its trailing newline. Keys use
// slashes ("net/ipv4/vs/conntrack"), since interface names may hold dots.
//
// Equivalent to: sysctl -n net.ipv4.vs.conntrack
func (s *Sysctl) Get(key string) (string, error) {
	p, err := s.path(key)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", explain(key, err)
	}
	return strings.TrimRight(string(b), "\n"), nil
}

// Set writes a parameter.
//
// Equivalent to: sysctl -w net.ipv4.vs.conntrack=1
func (s *Sysctl) Set(key, value string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	// No O_CREATE: a missing parameter is an error, not a new file.
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return explain(key, err)
	}
	_, err = f.WriteString(value + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("set sysctl %s to %q: %w", key, value, err)
	}
	return nil
}

// path checks that key names a parameter inside the tree.
func (s *Sysctl) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || filepath.Clean(key) != key || key == ".." || strings.HasPrefix(key, "../") {
		return "", fmt.Errorf("invalid sysctl key %q: want a relative path such as net/ipv4/vs/conntrack", key)
	}
	return filepath.Join(s.root, key), nil
}

// explain says why a parameter is missing when the reason is known: the
// net/ipv4/vs tree appears only once the ip_vs module is loaded.
func explain(key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) && strings.HasPrefix(key, "net/ipv4/vs/") {
		return fmt.Errorf("sysctl %s does not exist: the ip_vs module is not loaded (modprobe ip_vs): %w", key, err)
	}
	return fmt.Errorf("sysctl %s: %w", key, err)
}
