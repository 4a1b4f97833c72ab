// Package ipvs is the kernel's IP Virtual Server table over generic netlink:
// the real implementation of kernel.IPVS.
//
// It speaks the IPVS generic netlink protocol (include/uapi/linux/ip_vs.h)
// itself, with the same messages as ipvsadm and github.com/moby/ipvs, rather
// than wrapping moby/ipvs, because moby/ipvs cannot do what this package is
// for and brings what a daemon must not have:
//   - it sends one request and waits for its ack; Exec pipelines thousands of
//     writes per sendmsg through nlbatch, with one error per write;
//   - its first use execs `modprobe -va ip_vs` and logs through logrus, and
//     resolves the IPVS family once per process (a sync.Once), so a module
//     loaded later is never seen and a missing one becomes odd errors later;
//   - its receive loop retries EAGAIN forever, and it reads the u32 weight
//     as a u16.
//
// The wire format is exactly moby/ipvs's (the e2e tests write with one and
// read with the other, both ways), and moby/ipvs remains the baseline the
// pipelined writes are measured against.
package ipvs

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch"
	"golang.org/x/sys/unix"
)

// ErrUnavailable is returned by Open when the kernel has no IPVS.
var ErrUnavailable = errors.New("IPVS is not available in this kernel: load it with `modprobe ip_vs` (and ip_vs_<sched> for each scheduler)")

// errNotOpen is returned by every method before Open.
var errNotOpen = errors.New("ipvs: used before Open")

// Config says where and how to program IPVS.
type Config struct {
	// NetNSPath, when set, is the network namespace to program
	// (/var/run/netns/NAME); otherwise the caller's at Open.
	NetNSPath string
	// Window is the most writes per sendmsg (nlbatch.DefaultWindow if 0).
	Window int
}

// IPVS programs the IPVS table of one network namespace. It is safe for
// concurrent use.
type IPVS struct {
	cfg    Config
	mu     sync.Mutex
	sock   *nlbatch.Socket
	family uint16 // the IPVS generic netlink family id

	// procMu serializes reads of proc, the /proc/net/ip_vs listing of the
	// same namespace as sock (nil: Dump reads real servers over netlink).
	procMu sync.Mutex
	proc   *os.File
}

// New returns an IPVS for cfg; it does no I/O until Open.
func New(cfg Config) *IPVS { return &IPVS{cfg: cfg} }

// Open opens the generic netlink socket and looks up the IPVS family. Looking
// it up makes the kernel try to load ip_vs on its own (request_module); when
// that fails too, Open returns ErrUnavailable.
func (v *IPVS) Open() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.sock != nil {
		return nil
	}
	sock, err := nlbatch.Open(nlbatch.Config{Protocol: unix.NETLINK_GENERIC, NetNSPath: v.cfg.NetNSPath, Window: v.cfg.Window})
	if err != nil {
		return fmt.Errorf("open generic netlink socket: %w", err)
	}
	family, err := resolveFamily(sock)
	if err != nil {
		_ = sock.Close()
		return err
	}
	v.sock, v.family = sock, family
	v.procMu.Lock()
	v.proc = openProc(v.cfg.NetNSPath)
	v.procMu.Unlock()
	return nil
}

// Close closes the socket; the IPVS can be opened again.
func (v *IPVS) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.sock == nil {
		return nil
	}
	err := v.sock.Close()
	v.sock = nil
	v.procMu.Lock()
	if v.proc != nil {
		_ = v.proc.Close()
		v.proc = nil
	}
	v.procMu.Unlock()
	return err
}

// socket returns the open socket and the family id.
func (v *IPVS) socket() (*nlbatch.Socket, uint16, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.sock == nil {
		return nil, 0, errNotOpen
	}
	return v.sock, v.family, nil
}

// resolveFamily asks the generic netlink controller for the IPVS family id.
func resolveFamily(sock *nlbatch.Socket) (uint16, error) {
	req := nlbatch.NewMessage(unix.GENL_ID_CTRL, 0).
		Header([]byte{unix.CTRL_CMD_GETFAMILY, 1, 0, 0}).
		String(unix.CTRL_ATTR_FAMILY_NAME, "IPVS").
		Bytes()
	var id uint16
	err := sock.Query(req, func(m nlbatch.Msg) error {
		if len(m.Data) < genlHeaderLen {
			return fmt.Errorf("%w: generic netlink reply of %d bytes", nlbatch.ErrMalformed, len(m.Data))
		}
		attrs, err := nlbatch.ParseAttrs(m.Data[genlHeaderLen:])
		if err != nil {
			return err
		}
		for _, a := range attrs {
			if a.Type == unix.CTRL_ATTR_FAMILY_ID {
				if v, ok := a.U16(); ok {
					id = v
				}
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, unix.ENOENT):
		return 0, ErrUnavailable
	case err != nil:
		return 0, fmt.Errorf("look up the IPVS generic netlink family: %w", err)
	case id == 0:
		return 0, fmt.Errorf("look up the IPVS generic netlink family: %w: no family id in the reply", nlbatch.ErrMalformed)
	}
	return id, nil
}
