package framework

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// DefaultTimeout bounds one client exchange (connect, send, answer) when
// Client.Timeout is zero: short, so a dropped packet fails fast, yet long
// enough for an emulated CPU.
const DefaultTimeout = 2 * time.Second

// Proto names a kind of exchange with a backend.
type Proto string

// The exchanges a Client can make; see the package doc for the servers.
const (
	HTTP    Proto = "http"     // GET / on a TCP port
	UDP     Proto = "udp"      // one datagram, one answer
	TCPLine Proto = "tcp-line" // one line on a fresh connection, one answer
	SCTP    Proto = "sctp"     // one message on a fresh association, one answer
)

// Client sends test traffic. The zero value sends from the root namespace
// with the kernel's choice of source address.
type Client struct {
	// NS is the network namespace to send from; "" is the test's own (root).
	NS string
	// Source is the local IP to send from; "" lets the kernel choose.
	Source string
	// SourcePort is the local port to send from; 0 lets the kernel choose.
	SourcePort int
	// Timeout bounds each exchange; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Reply is what a backend answered.
type Reply struct {
	// Backend is the name of the backend that answered.
	Backend string
	// Source is the client's address as the backend saw it, "IP:port"
	// (HTTP only; empty for the other protocols).
	Source string
}

// Exchange makes one exchange of the given kind with target ("IP:port").
func (c Client) Exchange(proto Proto, target string) (Reply, error) {
	switch proto {
	case HTTP:
		return c.HTTPGet(target)
	case UDP:
		return c.UDP(target)
	case TCPLine:
		return c.TCPLine(target)
	case SCTP:
		return c.SCTP(target)
	}
	return Reply{}, fmt.Errorf("unknown protocol %q", proto)
}

// HTTPGet fetches http://target/ on a fresh connection and returns which
// backend answered.
func (c Client) HTTPGet(target string) (Reply, error) {
	transport := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return c.dial(network, addr) // the error below names the client
		},
		DisableKeepAlives: true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: c.timeout()}
	resp, err := client.Get("http://" + target + "/")
	if err != nil {
		return Reply{}, fmt.Errorf("%w%s", err, c.from()) // err names the URL
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return Reply{}, fmt.Errorf("http get %s: read body: %w%s", target, err, c.from())
	}
	if resp.StatusCode != http.StatusOK {
		return Reply{}, fmt.Errorf("http get %s: status %s: %q%s", target, resp.Status, body, c.from())
	}
	return Reply{Backend: strings.TrimSpace(string(body)), Source: resp.Header.Get("X-Source")}, nil
}

// UDP sends one datagram to target and returns which backend answered.
func (c Client) UDP(target string) (Reply, error) {
	conn, err := c.Dial("udp", target)
	if err != nil {
		return Reply{}, err
	}
	defer conn.Close()
	name, err := c.ask(conn)
	if err != nil {
		return Reply{}, fmt.Errorf("udp exchange with %s: %w%s", target, err, c.from())
	}
	return Reply{Backend: name}, nil
}

// TCPLine sends one line to target's line server on a fresh connection and
// returns which backend answered.
func (c Client) TCPLine(target string) (Reply, error) {
	conn, err := c.OpenLine(target)
	if err != nil {
		return Reply{}, err
	}
	defer conn.Close()
	name, err := conn.Ask()
	return Reply{Backend: name}, err
}

// Dial opens a connection to target ("IP:port") over network ("tcp" or
// "udp"; the address family follows target) from the client's namespace and
// source address.
func (c Client) Dial(network, target string) (net.Conn, error) {
	conn, err := c.dial(network, target)
	if err != nil {
		return nil, fmt.Errorf("%w%s", err, c.from()) // err names network and target
	}
	return conn, nil
}

// dial is Dial without the client in its error.
func (c Client) dial(network, target string) (net.Conn, error) {
	dialer := &net.Dialer{Timeout: c.timeout()}
	if c.Source != "" || c.SourcePort != 0 {
		ip := net.ParseIP(c.Source) // nil: the kernel chooses
		if strings.HasPrefix(network, "udp") {
			dialer.LocalAddr = &net.UDPAddr{IP: ip, Port: c.SourcePort}
		} else {
			dialer.LocalAddr = &net.TCPAddr{IP: ip, Port: c.SourcePort}
		}
	}
	var conn net.Conn
	err := InNamespace(c.NS, func() error {
		var err error
		conn, err = dialer.Dial(network, target)
		return err
	})
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// LineConn is an open connection to a backend's line server (port 9000),
// for scenarios that hold a connection across changes.
type LineConn struct {
	net.Conn
	reader  *bufio.Reader
	timeout time.Duration
}

// OpenLine connects to target's line server and keeps the connection open
// until Close.
func (c Client) OpenLine(target string) (*LineConn, error) {
	conn, err := c.Dial("tcp", target)
	if err != nil {
		return nil, err
	}
	return &LineConn{Conn: conn, reader: bufio.NewReader(conn), timeout: c.timeout()}, nil
}

// Ask sends one line and returns the name of the backend that answered.
func (l *LineConn) Ask() (string, error) {
	_ = l.SetDeadline(time.Now().Add(l.timeout))
	if _, err := io.WriteString(l.Conn, "hello\n"); err != nil {
		return "", fmt.Errorf("tcp line to %s: send: %w", l.RemoteAddr(), err)
	}
	line, err := l.reader.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("tcp line to %s: answer: %w", l.RemoteAddr(), err)
	}
	return strings.TrimSpace(line), nil
}

// IsRefused reports whether err means the target actively refused: a TCP
// reset or an ICMP port unreachable (e.g. a VIP without a virtual server, or
// a backend whose server is stopped).
func IsRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// IsTimeout reports whether err means no answer came in time (packets
// dropped or blackholed).
func IsTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}

// ask sends one datagram or line and reads the one-line answer.
func (c Client) ask(conn net.Conn) (string, error) { return Ask(conn, c.timeout()) }

// Ask sends one datagram or line on conn and returns the one-line answer
// (a backend's name), waiting at most timeout.
func Ask(conn net.Conn, timeout time.Duration) (string, error) {
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(conn, "hello\n"); err != nil {
		return "", err
	}
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

func (c Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// from describes the client for error messages: " (from namespace X,
// source Y)", or "" for the root namespace and the kernel's source.
func (c Client) from() string {
	var parts []string
	if c.NS != "" {
		parts = append(parts, "namespace "+c.NS)
	}
	if c.Source != "" {
		parts = append(parts, "source "+c.Source)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (from " + strings.Join(parts, ", ") + ")"
}

// InNamespace runs fn in network namespace ns ("" runs fn as is), on a dedicated
// goroutine locked to its OS thread. The thread switches back before it is
// unlocked; if it cannot, it stays locked, and the Go runtime retires it with
// the goroutine instead of running other code in the wrong namespace.
// Sockets created by fn stay in ns.
func InNamespace(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		origin, err := netns.Get()
		if err != nil {
			done <- fmt.Errorf("open own namespace: %w", err)
			return
		}
		defer origin.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			done <- fmt.Errorf("open namespace %s: %w", ns, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			done <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		fnErr := fn()
		if err := netns.Set(origin); err != nil {
			done <- fmt.Errorf("leave namespace %s: %w", ns, err)
			return
		}
		runtime.UnlockOSThread()
		done <- fnErr
	}()
	return <-done
}
