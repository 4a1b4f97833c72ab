package server

import (
	"encoding/json"
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
	// LocalEndpoints is the number of this node's ready endpoints (distinct
	// addresses; serving but terminating ones do not count).
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
	// grace is how long a removed server's clients may take to finish.
	grace time.Duration
}

type serviceHealthServer struct {
	mu   sync.Mutex
	info ServiceHealth
	srv  *http.Server
}

// NewServiceHealthServers returns a manager; proxyOK reports the proxy's own health.
func NewServiceHealthServers(listenHost string, proxyOK func() bool, log *zap.Logger) *ServiceHealthServers {
	return &ServiceHealthServers{addr: listenHost, log: log, servers: map[uint16]*serviceHealthServer{}, proxyOK: proxyOK,
		grace: 2 * time.Second}
}

// Sync makes the running servers match want (port → Service). It is
// called from the sync loop, so it never waits for a client: a removed
// server's port is closed at once and its connections are shut down in the
// background.
func (m *ServiceHealthServers) Sync(want map[uint16]ServiceHealth) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for port, s := range m.servers {
		if _, ok := want[port]; !ok {
			shutdown(s.srv, m.grace)
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
	ln, err := listen(net.JoinHostPort(m.addr, strconv.Itoa(int(port))), HealthLimits)
	if err != nil {
		return nil, err
	}
	s := &serviceHealthServer{info: info}
	current := func() ServiceHealth {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.info
	}
	s.srv = newServer(serviceHealthHandler(current, m.proxyOK), HealthLimits)
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// serviceHealthHandler answers a health check as kube-proxy does: 200 when
// the node has ready local endpoints and the proxy is healthy, 503 otherwise;
// the count in X-Load-Balancing-Endpoint-Weight (load balancers that weigh
// nodes read it) and in kube-proxy's JSON body, laid out as kube-proxy lays
// it out (tab-indented, no trailing newline), since monitoring compares it.
// proxyOK may be nil: healthy.
func serviceHealthHandler(info func() ServiceHealth, proxyOK func() bool) http.Handler {
	type service struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	}
	type answer struct {
		Service             service `json:"service"`
		LocalEndpoints      int     `json:"localEndpoints"`
		ServiceProxyHealthy bool    `json:"serviceProxyHealthy"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := info()
		healthy := proxyOK == nil || proxyOK()
		body, _ := json.MarshalIndent(answer{Service: service{Namespace: info.Namespace, Name: info.Name},
			LocalEndpoints: info.LocalEndpoints, ServiceProxyHealthy: healthy}, "", "\t")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Load-Balancing-Endpoint-Weight", strconv.Itoa(info.LocalEndpoints))
		if info.LocalEndpoints == 0 || !healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write(body)
	})
}

// Close stops every server now, cutting off clients (the daemon is stopping).
func (m *ServiceHealthServers) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for port, s := range m.servers {
		_ = s.srv.Close()
		delete(m.servers, port)
	}
}
