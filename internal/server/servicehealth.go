package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ServiceHealth describes one Service's health-check node port.
type ServiceHealth struct {
	Namespace, Name string
	// LocalEndpoints is the number of this node's ready endpoints.
	LocalEndpoints int
}

// ServiceHealthServers runs one HTTP server per healthCheckNodePort, like
// kube-proxy: 200 when the node has local endpoints for the Service (so the
// cloud load balancer sends it traffic), 503 when it has none.
type ServiceHealthServers struct {
	mu      sync.Mutex
	addr    string // host part to listen on, "" for all addresses
	log     *zap.Logger
	servers map[uint16]*serviceHealthServer
	proxyOK func() bool
}

type serviceHealthServer struct {
	mu     sync.Mutex
	info   ServiceHealth
	srv    *http.Server
	cancel context.CancelFunc
}

// NewServiceHealthServers returns a manager; proxyOK reports the proxy's own health.
func NewServiceHealthServers(listenHost string, proxyOK func() bool, log *zap.Logger) *ServiceHealthServers {
	return &ServiceHealthServers{addr: listenHost, log: log, servers: map[uint16]*serviceHealthServer{}, proxyOK: proxyOK}
}

// Sync makes the running servers match want (port → Service).
func (m *ServiceHealthServers) Sync(want map[uint16]ServiceHealth) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for port, s := range m.servers {
		if _, ok := want[port]; !ok {
			s.cancel()
			delete(m.servers, port)
		}
	}
	for port, info := range want {
		if s, ok := m.servers[port]; ok {
			s.mu.Lock()
			s.info = info
			s.mu.Unlock()
			continue
		}
		s, err := m.start(port, info)
		if err != nil {
			m.log.Warn("cannot serve health check node port", zap.Uint16("port", port), zap.String("service", info.Namespace+"/"+info.Name), zap.Error(err))
			continue
		}
		m.servers[port] = s
	}
}

func (m *ServiceHealthServers) start(port uint16, info ServiceHealth) (*serviceHealthServer, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(m.addr, strconv.Itoa(int(port))))
	if err != nil {
		return nil, err
	}
	s := &serviceHealthServer{info: info}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		info := s.info
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		healthy := m.proxyOK == nil || m.proxyOK()
		if info.LocalEndpoints == 0 || !healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintf(w, "%s\n", mustJSON(map[string]any{
			"service":             map[string]string{"namespace": info.Namespace, "name": info.Name},
			"localEndpoints":      info.LocalEndpoints,
			"serviceProxyHealthy": healthy,
		}))
	}), ReadHeaderTimeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = func() {
		cancel()
		sctx, c := context.WithTimeout(context.Background(), time.Second)
		defer c()
		_ = s.srv.Shutdown(sctx)
	}
	go func() { _ = s.srv.Serve(ln); <-ctx.Done() }()
	return s, nil
}

// Close stops every server.
func (m *ServiceHealthServers) Close() { m.Sync(nil) }

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
