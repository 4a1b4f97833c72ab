// Package iptables runs iptables-save and iptables-restore (ip6tables-* for
// IPv6): the real implementation of kernel.IPTables.
//
// Argument lists are fixed: nothing from the rules or the cluster ever
// becomes an argument; rules go to iptables-restore on stdin. The tools'
// stderr is part of every error.
package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// DefaultTimeout bounds one run of a tool, including waiting for the xtables
// lock (--wait).
const DefaultTimeout = 2 * time.Minute

var _ kernel.IPTables = (*IPTables)(nil)

// Tools names the save and restore programs of one family.
type Tools struct {
	Save, Restore string
}

// Config names the programs to run.
type Config struct {
	// IPv4 defaults to iptables-save and iptables-restore, IPv6 to
	// ip6tables-save and ip6tables-restore, found in PATH. The Debian
	// alternatives decide between the nft and legacy backends; set
	// iptables-legacy-save and so on to choose.
	IPv4, IPv6 Tools
	// Timeout bounds each run (DefaultTimeout if 0).
	Timeout time.Duration
}

// IPTables runs the tools. It holds no state.
type IPTables struct {
	v4, v6  Tools
	timeout time.Duration
}

// New returns an IPTables for cfg; it does no I/O.
func New(cfg Config) *IPTables {
	t := &IPTables{v4: cfg.IPv4, v6: cfg.IPv6, timeout: cfg.Timeout}
	if t.v4.Save == "" {
		t.v4.Save = "iptables-save"
	}
	if t.v4.Restore == "" {
		t.v4.Restore = "iptables-restore"
	}
	if t.v6.Save == "" {
		t.v6.Save = "ip6tables-save"
	}
	if t.v6.Restore == "" {
		t.v6.Restore = "ip6tables-restore"
	}
	if t.timeout <= 0 {
		t.timeout = DefaultTimeout
	}
	return t
}

func (t *IPTables) tools(f state.Family) (Tools, error) {
	switch f {
	case state.IPv4:
		return t.v4, nil
	case state.IPv6:
		return t.v6, nil
	}
	return Tools{}, fmt.Errorf("iptables: unknown family %d", f)
}

// Save returns the nat, filter and mangle tables, in that order, as the save
// tool prints them.
//
// Equivalent to: iptables-save -t nat; iptables-save -t filter; iptables-save -t mangle
func (t *IPTables) Save(f state.Family) (string, error) {
	tools, err := t.tools(f)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	for _, table := range []string{"nat", "filter", "mangle"} {
		s, err := t.run(tools.Save, nil, "-t", table)
		if err != nil {
			return "", err
		}
		out.WriteString(s)
	}
	return out.String(), nil
}

// Restore applies input, each table atomically, leaving chains the input
// does not declare untouched; it waits for the xtables lock.
//
// Equivalent to: iptables-restore --noflush --wait < input
func (t *IPTables) Restore(f state.Family, input string) error {
	tools, err := t.tools(f)
	if err != nil {
		return err
	}
	_, err = t.run(tools.Restore, strings.NewReader(input), "--noflush", "--wait")
	return err
}

// run runs a tool with fixed arguments and returns its stdout. A failure
// carries the command line and the tool's stderr; a missing tool says which
// package provides it.
func (t *IPTables) run(name string, stdin *strings.Reader, args ...string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found (install the iptables package): %w", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	line := strings.Join(append([]string{name}, args...), " ")
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "", fmt.Errorf("%s: no result within %s: %w: %s", line, t.timeout, ctx.Err(), strings.TrimSpace(stderr.String()))
	case err != nil:
		return "", fmt.Errorf("%s: %w: %s", line, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
