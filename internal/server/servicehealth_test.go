package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestServiceHealthAnswer: a healthCheckNodePort answers exactly as
// kube-proxy's does: the JSON body in kube-proxy's layout, the count of
// ready local endpoints in X-Load-Balancing-Endpoint-Weight (which Google's
// WEIGHTED_MAGLEV load balancers read), 200 with endpoints and a healthy
// proxy, 503 otherwise.
func TestServiceHealthAnswer(t *testing.T) {
	cases := []struct {
		name      string
		local     int
		healthy   bool
		code      int
		weight    string
		body      string
		proxyNote string
	}{
		{name: "two local endpoints", local: 2, healthy: true, code: 200, weight: "2",
			body: "{\n\t\"service\": {\n\t\t\"namespace\": \"shop\",\n\t\t\"name\": \"web\"\n\t},\n\t\"localEndpoints\": 2,\n\t\"serviceProxyHealthy\": true\n}"},
		{name: "no local endpoint", local: 0, healthy: true, code: 503, weight: "0",
			body: "{\n\t\"service\": {\n\t\t\"namespace\": \"shop\",\n\t\t\"name\": \"web\"\n\t},\n\t\"localEndpoints\": 0,\n\t\"serviceProxyHealthy\": true\n}"},
		{name: "proxy unhealthy", local: 1, healthy: false, code: 503, weight: "1",
			body: "{\n\t\"service\": {\n\t\t\"namespace\": \"shop\",\n\t\t\"name\": \"web\"\n\t},\n\t\"localEndpoints\": 1,\n\t\"serviceProxyHealthy\": false\n}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info := ServiceHealth{Namespace: "shop", Name: "web", LocalEndpoints: c.local}
			h := serviceHealthHandler(func() ServiceHealth { return info }, func() bool { return c.healthy })
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != c.code {
				t.Errorf("status %d, want %d", res.StatusCode, c.code)
			}
			if got := res.Header.Get("X-Load-Balancing-Endpoint-Weight"); got != c.weight {
				t.Errorf("X-Load-Balancing-Endpoint-Weight %q, want %q", got, c.weight)
			}
			if got := res.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q, want application/json", got)
			}
			if string(body) != c.body {
				t.Errorf("body\n%s\nwant\n%s", body, c.body)
			}
		})
	}
}
