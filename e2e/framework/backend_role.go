package framework

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// runBackendRole is the body of a re-executed test binary inside a backend's
// namespace: it serves until killed. It prints "ready" on stdout once every
// port listens; its log goes to stderr.
func runBackendRole(name string) int {
	logger := log.New(os.Stderr, "backend "+name+": ", log.Ltime|log.Lmicroseconds)
	if name == "" {
		logger.Print("no name given")
		return 2
	}
	requests := logger // what each request logs
	if os.Getenv(envRoleQuiet) != "" {
		requests = log.New(io.Discard, "", 0)
	}
	answer := []byte(name + "\n")

	families := []string{"4"}
	if os.Getenv(envRoleIPv6) == "true" {
		families = append(families, "6") // separate IPv6-only sockets beside the IPv4 ones
	}
	errs := make(chan error, 16)
	handler := httpHandler(answer, requests)
	for _, fam := range families {
		for i, port := range []int{PortHTTP, PortHTTPAlt, PortTCPLine, PortTCPDNS} {
			l, err := net.Listen("tcp"+fam, fmt.Sprintf(":%d", port))
			if err != nil {
				logger.Print(err)
				return 1
			}
			if i < 2 {
				srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
				go func() { errs <- srv.Serve(l) }()
			} else {
				go func() { errs <- serveLines(l, answer, requests) }()
			}
		}
		udp, err := net.ListenPacket("udp"+fam, fmt.Sprintf(":%d", PortUDP))
		if err != nil {
			logger.Print(err)
			return 1
		}
		go func() { errs <- serveUDP(udp, answer, requests) }()
		if os.Getenv(envRoleSCTP) == "true" {
			fd, err := listenSCTP(map[string]int{"4": unix.AF_INET, "6": unix.AF_INET6}[fam], PortSCTP)
			if err != nil {
				logger.Print(err)
				return 1
			}
			go func() { errs <- serveSCTP(fd, answer, requests.Printf) }()
		}
	}

	fmt.Println("ready")
	logger.Printf("serving http :%d :%d, udp :%d, tcp lines :%d :%d (IPv%s; sctp %s)", PortHTTP, PortHTTPAlt, PortUDP, PortTCPLine, PortTCPDNS,
		strings.Join(families, " and IPv"), os.Getenv(envRoleSCTP))
	logger.Print(<-errs)
	return 1
}

// httpHandler answers every request with the backend's name and tells the
// client, in header X-Source, the address it was seen from.
func httpHandler(answer []byte, logger *log.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger.Printf("http %s %s from %s", r.Host, r.URL.Path, r.RemoteAddr)
		w.Header().Set("X-Source", r.RemoteAddr)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(answer)
	})
}

// serveLines answers each line received on a connection with the backend's
// name, for as long as the client keeps the connection open.
func serveLines(l net.Listener, answer []byte, logger *log.Logger) error {
	for {
		conn, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer conn.Close()
			logger.Printf("tcp line connection from %s", conn.RemoteAddr())
			r := bufio.NewReader(conn)
			for {
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
				if _, err := conn.Write(answer); err != nil {
					return
				}
			}
		}()
	}
}

// serveUDP answers every datagram with the backend's name.
func serveUDP(conn net.PacketConn, answer []byte, logger *log.Logger) error {
	buf := make([]byte, 2048)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			logger.Printf("udp read: %v", err)
			continue
		}
		logger.Printf("udp %q from %s", strings.TrimSpace(string(buf[:n])), from)
		if _, err := conn.WriteTo(answer, from); err != nil {
			logger.Printf("udp reply to %s: %v", from, err)
		}
	}
}
