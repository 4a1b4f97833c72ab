package framework

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The daemon's default listening addresses, as seen from the node.
const (
	HealthzAddr = "127.0.0.1:10256" // /healthz, /livez (healthzBindAddress 0.0.0.0:10256)
	MetricsAddr = "127.0.0.1:10249" // /metrics, /proxyMode, /status
)

// endpointTimeout bounds one request to the daemon's HTTP endpoints.
const endpointTimeout = 5 * time.Second

// Healthz is one answer of the daemon's /healthz (or /livez).
type Healthz struct {
	// Code is the HTTP status: 200 healthy, 503 before the first full sync,
	// when a change has waited longer than twice the sync period, or when
	// the Node is not eligible.
	Code int
	// LastUpdated and CurrentTime are as kube-proxy prints them (Go's time format).
	LastUpdated  string `json:"lastUpdated"`
	CurrentTime  string `json:"currentTime"`
	NodeEligible *bool  `json:"nodeEligible"`
	// SourceStaleSince is set while the source (API server or manifest
	// directory) is unreachable.
	SourceStaleSince *time.Time `json:"sourceStaleSince"`
	// Body is the answer as sent.
	Body string `json:"-"`
}

// String renders the answer for test logs.
func (h Healthz) String() string {
	return fmt.Sprintf("%d %s", h.Code, strings.TrimSpace(h.Body))
}

// GetHealthz asks the daemon's /healthz at addr ("IP:port").
func GetHealthz(addr string) (Healthz, error) { return getHealth(addr, "/healthz") }

// GetLivez asks the daemon's /livez at addr ("IP:port").
func GetLivez(addr string) (Healthz, error) { return getHealth(addr, "/livez") }

func getHealth(addr, path string) (Healthz, error) {
	code, body, err := httpGet("", "http://"+addr+path)
	if err != nil {
		return Healthz{}, err
	}
	h := Healthz{Code: code, Body: body}
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		return h, fmt.Errorf("%s answered %d %q: %w", path, code, body, err)
	}
	return h, nil
}

// Metrics are the samples of one scrape of /metrics, by series as the
// exposition format writes them: `name{label="value",...}` (labels in the
// order the daemon prints them, which is sorted by label name).
type Metrics map[string]float64

// ScrapeMetrics reads the daemon's /metrics at addr ("IP:port").
func ScrapeMetrics(addr string) (Metrics, error) { return ScrapeMetricsIn("", addr) }

// ScrapeMetricsIn reads /metrics at addr from inside network namespace ns
// (a daemon listening on its namespace's 127.0.0.1).
func ScrapeMetricsIn(ns, addr string) (Metrics, error) {
	code, body, err := httpGet(ns, "http://"+addr+"/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/metrics answered %d: %s", code, body)
	}
	return parseMetrics(body)
}

// parseMetrics reads the Prometheus text exposition format (without
// timestamps, as client_golang writes it).
func parseMetrics(text string) (Metrics, error) {
	m := Metrics{}
	scanner := bufio.NewScanner(strings.NewReader(text))
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("metrics: unexpected line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: line %q: %w", line, err)
		}
		m[line[:i]] = v
	}
	return m, scanner.Err()
}

// httpGet fetches url from namespace ns ("" for the caller's).
func httpGet(ns, url string) (int, string, error) {
	client := &http.Client{Timeout: endpointTimeout, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
			return Client{NS: ns, Timeout: endpointTimeout}.dial(network, addr)
		},
	}}
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, "", fmt.Errorf("get %s: read body: %w", url, err)
	}
	return resp.StatusCode, string(body), nil
}

// HealthzSample is one answer of /healthz, or the error of asking, and when.
type HealthzSample struct {
	At time.Time
	Healthz
	Err error
}

// HealthzWatch asks /healthz in the background at a fixed interval and keeps
// every answer, so a scenario can check what the daemon said all along.
type HealthzWatch struct {
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	samples []HealthzSample
}

// WatchHealthz starts asking addr's /healthz every interval until Stop or
// the test's end.
func WatchHealthz(t testing.TB, addr string, interval time.Duration) *HealthzWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &HealthzWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			h, err := GetHealthz(addr)
			w.mu.Lock()
			w.samples = append(w.samples, HealthzSample{At: time.Now(), Healthz: h, Err: err})
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { w.Stop() })
	return w
}

// Samples returns the answers so far.
func (w *HealthzWatch) Samples() []HealthzSample {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]HealthzSample(nil), w.samples...)
}

// Stop ends the watch and returns every answer.
func (w *HealthzWatch) Stop() []HealthzSample {
	w.cancel()
	<-w.done
	return w.Samples()
}
