// Package nlbatch runs netlink requests pipelined: many requests go to the
// kernel in one sendmsg, then the kernel's answers are read and matched to
// the requests by sequence number, giving one error per request.
//
// The kernel handles requests to NETLINK_GENERIC, NETLINK_NETFILTER and
// NETLINK_ROUTE synchronously inside sendmsg, one message after another,
// carrying on after a failed one, and answers every failed request whether
// or not it asked for an acknowledgement. So only the last request of a
// window asks for one: when it arrives, the failures of the whole window
// are queued before it, and the requests without an answer succeeded. A
// window of N requests costs one sendmsg and as many recvmsg calls as there
// were failures, plus one, instead of N round trips.
//
// Two things can lose answers, and neither may go unnoticed:
//   - a receive buffer too small for a window of failures: the kernel drops
//     the answer and flags the socket with ENOBUFS. The socket's buffers are
//     raised (SO_RCVBUFFORCE as root) and the window is bounded by the buffer
//     (room for every request to fail), so this should not happen; if it
//     does, the requests without an answer get an error wrapping ErrAckLost
//     and ENOBUFS (they may or may not have been applied), and the window
//     shrinks.
//   - no acknowledgement of a window's last request within
//     Config.AckTimeout: its requests without an answer get ErrAckLost too.
//
// NETLINK_CAP_ACK keeps error acks small (no echoed payload) and
// NETLINK_EXT_ACK adds the kernel's explanation to errors (see Error).
package nlbatch

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Defaults for Config.
const (
	DefaultWindow      = 512
	DefaultBufferBytes = 4 << 20
	DefaultAckTimeout  = 10 * time.Second
	// ackBudget is the receive buffer space one queued ack may take: the
	// kernel charges an skb's truesize (about 1 KiB for an error ack with an
	// extended-ack message), not its payload.
	ackBudget = 2048
	// recvBufferBytes is the user buffer of one recvmsg; the kernel never
	// builds a dump skb larger than 32 KiB for it.
	recvBufferBytes = 64 << 10
)

// Config says which netlink socket to open and how to pipeline on it.
type Config struct {
	// Protocol is the netlink protocol: unix.NETLINK_GENERIC,
	// unix.NETLINK_NETFILTER or unix.NETLINK_ROUTE.
	Protocol int
	// NetNSPath, when set, is a network namespace file (/var/run/netns/NAME,
	// /proc/PID/ns/net) to open the socket in; otherwise the caller's.
	NetNSPath string
	// Window is the most requests sent in one sendmsg (DefaultWindow if 0).
	// It is lowered further to what the socket buffers can hold.
	Window int
	// BufferBytes is the send and receive buffer size asked for
	// (DefaultBufferBytes if 0). As root it is forced past net.core.*mem_max.
	BufferBytes int
	// AckTimeout bounds the wait for acknowledgements and replies
	// (DefaultAckTimeout if 0).
	AckTimeout time.Duration
}

// conn is the datagram transport under a Socket: a netlink socket, or a fake
// kernel in tests. recv returns unix.EAGAIN on timeout or, with
// unix.MSG_DONTWAIT, when nothing is queued.
type conn interface {
	send(b []byte) error
	recv(b []byte, flags int) (int, error)
	close() error
}

// Socket is one netlink socket used for pipelined writes (Exec) and for dumps
// and queries (Query). It is safe for concurrent use; calls are serialized.
type Socket struct {
	mu      sync.Mutex
	c       conn
	window  int
	maxSend int
	seq     uint32
	buf     []byte
}

// Open opens a netlink socket as cfg says, sets NETLINK_EXT_ACK and
// NETLINK_CAP_ACK, and raises its buffers.
func Open(cfg Config) (*Socket, error) {
	fd, err := socketIn(cfg.NetNSPath, cfg.Protocol)
	if err != nil {
		return nil, err
	}
	c := &fdConn{fd: fd}
	sndbuf, rcvbuf, err := setup(fd, cfg)
	if err != nil {
		_ = c.close()
		return nil, err
	}
	return newSocket(c, cfg.Window, sndbuf, rcvbuf), nil
}

// newSocket sizes the window for the socket's actual buffers.
func newSocket(c conn, window, sndbuf, rcvbuf int) *Socket {
	if window <= 0 {
		window = DefaultWindow
	}
	window = max(1, min(window, rcvbuf/ackBudget))
	return &Socket{
		c:       c,
		window:  window,
		maxSend: max(unix.SizeofNlMsghdr, sndbuf-32), // netlink_sendmsg refuses len > sk_sndbuf - 32
		seq:     uint32(time.Now().UnixNano()),
		buf:     make([]byte, recvBufferBytes),
	}
}

// Window returns the current number of requests per sendmsg.
func (s *Socket) Window() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.window
}

// Close closes the socket.
func (s *Socket) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.close()
}

// socketIn opens a netlink socket in the namespace at path (the current one
// if path is empty) and binds it.
func socketIn(path string, proto int) (int, error) {
	if path == "" {
		return socketHere(proto)
	}
	target, err := netns.GetFromPath(path)
	if err != nil {
		return -1, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer target.Close()

	// setns affects the calling thread only: pin the goroutine to it, and
	// make sure the thread is back in its namespace before unpinning.
	ch := make(chan struct{})
	var fd int
	go func() {
		defer close(ch)
		fd, err = socketInThread(target, proto)
	}()
	<-ch
	return fd, err
}

func socketInThread(target netns.NsHandle, proto int) (int, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return -1, fmt.Errorf("get current network namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return -1, fmt.Errorf("enter network namespace: %w", err)
	}
	fd, sockErr := socketHere(proto)
	if err := netns.Set(orig); err != nil {
		// The thread stays locked and dies with its goroutine: a thread in
		// the wrong namespace must not run other goroutines.
		if sockErr == nil {
			_ = unix.Close(fd)
		}
		return -1, fmt.Errorf("return to network namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return fd, sockErr
}

func socketHere(proto int) (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		_ = unix.Close(fd)
		return -1, os.NewSyscallError("bind", err)
	}
	return fd, nil
}

// setup sets the socket options and returns the buffer sizes the kernel
// granted (it doubles what is asked for, to cover its bookkeeping).
func setup(fd int, cfg Config) (sndbuf, rcvbuf int, err error) {
	for _, opt := range []int{unix.NETLINK_EXT_ACK, unix.NETLINK_CAP_ACK} {
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, opt, 1); err != nil {
			return 0, 0, os.NewSyscallError("setsockopt", err)
		}
	}
	size := cfg.BufferBytes
	if size <= 0 {
		size = DefaultBufferBytes
	}
	for _, o := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
		// The FORCE variants need CAP_NET_ADMIN; without it the plain ones
		// are capped at net.core.[rw]mem_max and the window shrinks to fit.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[0], size); err != nil {
			if !errors.Is(err, unix.EPERM) {
				return 0, 0, os.NewSyscallError("setsockopt", err)
			}
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[1], size); err != nil {
				return 0, 0, os.NewSyscallError("setsockopt", err)
			}
		}
	}
	if sndbuf, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF); err != nil {
		return 0, 0, os.NewSyscallError("getsockopt", err)
	}
	if rcvbuf, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF); err != nil {
		return 0, 0, os.NewSyscallError("getsockopt", err)
	}
	timeout := cfg.AckTimeout
	if timeout <= 0 {
		timeout = DefaultAckTimeout
	}
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return 0, 0, os.NewSyscallError("setsockopt", err)
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return 0, 0, os.NewSyscallError("setsockopt", err)
	}
	return sndbuf, rcvbuf, nil
}

// fdConn is a bound netlink socket.
type fdConn struct{ fd int }

func (c *fdConn) send(b []byte) error {
	for {
		err := unix.Sendto(c.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if err != unix.EINTR {
			return err
		}
	}
}

func (c *fdConn) recv(b []byte, flags int) (int, error) {
	for {
		// MSG_TRUNC makes recvfrom return the datagram's real length, so
		// a truncated read is detected instead of parsed.
		n, from, err := unix.Recvfrom(c.fd, b, flags|unix.MSG_TRUNC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
			continue // not from the kernel
		}
		return n, nil
	}
}

func (c *fdConn) close() error {
	if c.fd < 0 {
		return nil
	}
	err := unix.Close(c.fd)
	c.fd = -1
	return err
}
