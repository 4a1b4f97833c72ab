package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// hcManifests: a LoadBalancer Service with externalTrafficPolicy Local and
// healthCheckNodePort 32010, with the given endpoints ("ip node
// ready|terminating" each).
func hcManifests(name string, eps ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: Service
metadata: {name: %s, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.%d
  externalTrafficPolicy: Local
  healthCheckNodePort: 32010
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: %d, protocol: TCP}
status:
  loadBalancer:
    ingress:
    - ip: 198.51.100.%d
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %s-1
  namespace: default
  labels: {kubernetes.io/service-name: %s}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
`, name, 120+len(name), 30100+len(name), 120+len(name), name, name)
	if len(eps) == 0 {
		b.WriteString("endpoints: []\n")
	} else {
		b.WriteString("endpoints:\n")
	}
	for _, e := range eps {
		f := strings.Fields(e)
		ready := f[2] == "ready"
		fmt.Fprintf(&b, "- addresses: [%s]\n  nodeName: %s\n  conditions: {ready: %t, serving: true, terminating: %t}\n", f[0], f[1], ready, !ready)
	}
	return b.String()
}

// healthCheck is one answer of a health check node port.
type healthCheck struct {
	code         int
	weight, body string
}

func getHealthCheck(c framework.Client, target string) (healthCheck, error) {
	conn, err := c.Dial("tcp", target)
	if err != nil {
		return healthCheck{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: lb-health-check\r\nConnection: close\r\n\r\n"); err != nil {
		return healthCheck{}, err
	}
	resp, err := http.ReadResponse(bufioReader(conn), nil)
	if err != nil {
		return healthCheck{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return healthCheck{code: resp.StatusCode, weight: resp.Header.Get("X-Load-Balancing-Endpoint-Weight"), body: string(body)}, err
}

// hcBody is kube-proxy's answer body.
func hcBody(name string, local int) string {
	return fmt.Sprintf("{\n\t\"service\": {\n\t\t\"namespace\": \"default\",\n\t\t\"name\": %q\n\t},\n\t\"localEndpoints\": %d,\n\t\"serviceProxyHealthy\": true\n}", name, local)
}

// TestHealthCheckNodePort: a load balancer's health check of a node, asked
// over HTTP from outside it (a client namespace, to the node address), gets
// what kube-proxy answers as the Service's endpoints come and go: the count
// of this node's ready endpoints (a remote one and serving-terminating ones
// do not count), 200 with some and 503 with none, in kube-proxy's JSON body
// and X-Load-Balancing-Endpoint-Weight. A second Service with the same
// healthCheckNodePort is an error for it; the first keeps the port.
func TestHealthCheckNodePort(t *testing.T) { framework.EachRulesBackend(t, healthCheckNodePort) }

// healthCheckNodePort is TestHealthCheckNodePort with one rules backend (framework.CurrentRulesBackend).
func healthCheckNodePort(t *testing.T) {
	framework.ResetKernel(t)
	lb := framework.NewClientNS(t, "lb", "10.250.0.2")
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "hc.yaml", hcManifests("hc", "10.244.1.2 node-1 ready", "10.244.2.2 node-2 ready"))
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)
	target := framework.NodeIP + ":32010"
	expect := func(step string, want healthCheck) {
		t.Helper()
		var got healthCheck
		framework.Eventually(t, 20*time.Second, func() error {
			var err error
			if got, err = getHealthCheck(lb.Client(), target); err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("%s: got %d weight %q body\n%s\nwant %d weight %q body\n%s", step, got.code, got.weight, got.body, want.code, want.weight, want.body)
			}
			return nil
		})
		t.Logf("%s: %d, X-Load-Balancing-Endpoint-Weight %s, localEndpoints in the body", step, got.code, got.weight)
	}
	expect("one local ready endpoint, one remote", healthCheck{200, "1", hcBody("hc", 1)})

	framework.WriteManifest(t, dir, "hc.yaml", hcManifests("hc", "10.244.1.2 node-1 ready", "10.244.1.3 node-1 ready", "10.244.2.2 node-2 ready"))
	expect("two local ready endpoints", healthCheck{200, "2", hcBody("hc", 2)})

	framework.WriteManifest(t, dir, "hc.yaml", hcManifests("hc", "10.244.1.2 node-1 terminating", "10.244.1.3 node-1 ready", "10.244.2.2 node-2 ready"))
	expect("one local endpoint terminating", healthCheck{200, "1", hcBody("hc", 1)})

	framework.WriteManifest(t, dir, "hc.yaml", hcManifests("hc", "10.244.1.2 node-1 terminating", "10.244.1.3 node-1 terminating", "10.244.2.2 node-2 ready"))
	expect("only serving-terminating local endpoints", healthCheck{503, "0", hcBody("hc", 0)})

	framework.WriteManifest(t, dir, "hc.yaml", hcManifests("hc"))
	expect("no endpoints", healthCheck{503, "0", hcBody("hc", 0)})

	framework.WriteManifest(t, dir, "hc2.yaml", hcManifests("hc2", "10.244.1.4 node-1 ready"))
	framework.WriteManifest(t, dir, "hc.yaml", hcManifests("hc", "10.244.1.2 node-1 ready"))
	expect("a second Service on the port", healthCheck{200, "1", hcBody("hc", 1)})
	framework.Eventually(t, 10*time.Second, func() error {
		problems, err := framework.Problems(framework.MetricsAddr)
		if err != nil {
			return err
		}
		if !framework.HasProblem(problems, "default/hc2", "spec.healthCheckNodePort: 32010 is also the health check port of Service default/hc, which keeps it") {
			return fmt.Errorf("/status has no problem with default/hc2's healthCheckNodePort: %q", problems)
		}
		return nil
	})

	framework.RemoveManifest(t, dir, "hc.yaml")
	expect("the first Service gone: the second gets the port", healthCheck{200, "1", hcBody("hc2", 1)})
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
