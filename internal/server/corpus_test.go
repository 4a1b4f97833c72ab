package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/health"
)

// httpCase is one raw exchange with /healthz's server and what must come
// of it: an answer with a status code, or the server closing the
// connection by itself (want 0).
type httpCase struct {
	name string
	send string
	want int
}

var httpCorpus = []httpCase{
	{"plain GET", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200},
	{"HTTP/1.0 without Host", "GET /healthz HTTP/1.0\r\n\r\n", 200},
	{"POST with a body", "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 200},
	{"unknown path", "GET /debug/pprof/ HTTP/1.1\r\nHost: x\r\n\r\n", 404},
	{"garbage request line", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400},
	{"headers over 8 KiB", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n", 431},
	{"URL over 8 KiB", "GET /healthz?" + strings.Repeat("a", 16<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", 431},
	{"headers never finished", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: ", 0},
	{"request line never finished", "GET /heal", 0},
	{"body never finished", "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b", 200},
	{"idle after a request", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200},
	{"nothing sent", "", 0},
	{"ten pipelined requests", strings.Repeat("GET /livez HTTP/1.1\r\nHost: x\r\n\r\n", 10), 200},
	{"a header with a NUL", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400},
}

// TestHTTPCorpus: hostile exchanges with the /healthz server (open to
// anyone who can reach the node). Each gets its answer, and then the server
// closes the connection by itself: an idle, slow or unfinished client holds
// nothing for long.
func TestHTTPCorpus(t *testing.T) {
	tr := health.NewTracker(time.Minute, time.Minute, nil)
	tr.Synced(time.Now(), true)
	l := HealthLimits
	l.ReadHeader, l.Read, l.Write, l.Idle = 200*time.Millisecond, 300*time.Millisecond, time.Second, 200*time.Millisecond
	addr := serve(t, HealthMux(tr), l)
	for _, c := range httpCorpus {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, c.send); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // turns a hang into a failure
			r := bufio.NewReader(conn)
			if c.want != 0 {
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != c.want {
					t.Fatalf("answered %d, want %d", resp.StatusCode, c.want)
				}
			}
			// then the server closes the connection by itself
			for {
				if _, err := r.ReadByte(); err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						t.Fatal("the server still holds the connection after 10 s")
					}
					return
				}
			}
		})
	}
}
