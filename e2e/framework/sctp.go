package framework

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The Go standard library has no SCTP, so the backends' SCTP server and the
// client speak it through plain sockets: one-to-one style (SOCK_STREAM), one
// message in, the backend's name out.

// PortSCTP is the port the backends' SCTP echo listens on (with SCTP on).
const PortSCTP = 9000

// sctpSockaddr turns "IP:port" into a socket address and its family.
func sctpSockaddr(target string) (unix.Sockaddr, int, error) {
	ap, err := netip.ParseAddrPort(target)
	if err != nil {
		return nil, 0, err
	}
	if a := ap.Addr().Unmap(); a.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}, unix.AF_INET, nil
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}, unix.AF_INET6, nil
}

// listenSCTP listens on port for family (AF_INET or AF_INET6, IPv6 only).
func listenSCTP(family, port int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_SCTP)
	if err != nil {
		return -1, fmt.Errorf("SCTP socket (is the sctp module loaded?): %w", err)
	}
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: port}
	if family == unix.AF_INET6 {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
		sa = &unix.SockaddrInet6{Port: port}
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind SCTP port %d: %w", port, err)
	}
	if err := unix.Listen(fd, 64); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen SCTP port %d: %w", port, err)
	}
	return fd, nil
}

// serveSCTP answers every message of every association with answer; log
// gets the peer of each.
func serveSCTP(fd int, answer []byte, logf func(string, ...any)) error {
	for {
		conn, peer, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
		if err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECONNABORTED) {
				continue
			}
			return fmt.Errorf("SCTP accept: %w", err)
		}
		logf("sctp association from %s", sockaddrString(peer))
		go func() {
			defer unix.Close(conn)
			buf := make([]byte, 2048)
			for {
				n, err := unix.Read(conn, buf)
				if err != nil || n == 0 {
					return
				}
				if _, err := unix.Write(conn, answer); err != nil {
					return
				}
			}
		}()
	}
}

func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	}
	return "?"
}

// SCTP opens an association to target ("IP:port") from the client's
// namespace, sends one message and returns which backend answered.
func (c Client) SCTP(target string) (Reply, error) {
	var name string
	err := InNamespace(c.NS, func() error {
		var err error
		name, err = sctpAsk(target, c.timeout())
		return err
	})
	if err != nil {
		return Reply{}, fmt.Errorf("sctp exchange with %s: %w%s", target, err, c.from())
	}
	return Reply{Backend: name}, nil
}

func sctpAsk(target string, timeout time.Duration) (string, error) {
	sa, family, err := sctpSockaddr(target)
	if err != nil {
		return "", err
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_SCTP)
	if err != nil {
		return "", fmt.Errorf("SCTP socket: %w", err)
	}
	defer unix.Close(fd)
	// SCTP's connect, send and receive all honour the socket timeouts
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := unix.Connect(fd, sa); err != nil {
		return "", wrapTimeout("connect", err)
	}
	if _, err := unix.Write(fd, []byte("hello\n")); err != nil {
		return "", wrapTimeout("send", err)
	}
	buf := make([]byte, 512)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return "", wrapTimeout("receive", err)
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

// wrapTimeout makes a socket timeout recognizable by IsTimeout.
func wrapTimeout(what string, err error) error {
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINPROGRESS) || errors.Is(err, unix.ETIMEDOUT) {
		return fmt.Errorf("%s: %w (%w)", what, err, timeoutError{})
	}
	return fmt.Errorf("%s: %w", what, err)
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

var _ net.Error = timeoutError{}
