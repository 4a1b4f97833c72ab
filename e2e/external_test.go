package e2e

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// nodePortService is default/np: NodePort 30080 in front of port 8080.
const nodePortService = `apiVersion: v1
kind: Service
metadata: {name: np, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.20
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP}
`

// externalManifests: a NodePort Service, a Service with externalIPs (one
// foreign to the node, one the node's own address), and a LoadBalancer
// Service with an ingress IP open only to 10.250.1.0/24.
func externalManifests() string {
	eps := onNode("node-1", "10.244.1.2", "10.244.2.2")
	ports := []string{"http=8080/TCP"}
	return joinYAML(nodePortService, sliceYAML("np", "np-1", ports, eps), `apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec:
  clusterIP: 10.96.0.21
  externalIPs: [203.0.113.10, 10.10.0.1]
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
`, sliceYAML("ext", "ext-1", ports, eps), `apiVersion: v1
kind: Service
metadata: {name: lb, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.22
  loadBalancerSourceRanges: [10.250.1.0/24]
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30082, protocol: TCP}
status:
  loadBalancer:
    ingress:
    - ip: 198.51.100.10
`, sliceYAML("lb", "lb-1", ports, eps))
}

// TestExternalAccess: the ways into a Service from outside the cluster
// network, with one daemon.
//   - NodePort 30080 is a virtual server on the node address 10.10.0.1, port
//     30080 is in KUBE-NODE-PORT-TCP, and requests from a client namespace and
//     from the node are answered, masqueraded: the backend sees the node's
//     address;
//   - NodePort 30080 on 127.0.0.1: not programmed, because IPVS cannot
//     forward a connection whose source is 127.0.0.1 to a real server
//     elsewhere (see there): a client on the node is refused at once;
//   - externalIPs: 203.0.113.10 is bound on kube-ipvs0 and reachable from a
//     client namespace; 10.10.0.1, the node's own address (refused unless
//     --external-ip-cidrs allows it, as here), gets a virtual server but is
//     not bound on kube-ipvs0; both are in KUBE-EXTERNAL-IP;
//   - a LoadBalancer ingress IP with loadBalancerSourceRanges 10.250.1.0/24
//     answers a client at 10.250.1.2, while one at 10.250.2.2 times out
//     (dropped, not refused) there, yet reaches the Service's ClusterIP.
func TestExternalAccess(t *testing.T) { framework.EachRulesBackend(t, externalAccess) }

// externalAccess is TestExternalAccess with one rules backend (framework.CurrentRulesBackend).
func externalAccess(t *testing.T) {
	framework.ResetKernel(t)
	framework.NewBackend(t, "pod-a", "10.244.1.2")
	framework.NewBackend(t, "pod-b", "10.244.2.2")
	allowed := framework.NewClientNS(t, "allowed", "10.250.1.2").Client()
	deniedNS := framework.NewClientNS(t, "denied", "10.250.2.2")
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "external.yaml", externalManifests())
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir,
		ExtraArgs: []string{"--external-ip-cidrs", "203.0.113.0/24," + framework.NodeIP + "/32"}})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)
	vss := framework.IPVSServices(t)
	bound := framework.Addrs(t, "kube-ipvs0")
	rs := []string{"10.244.1.2:8080", "10.244.2.2:8080"}

	t.Run("NodePort", func(t *testing.T) {
		for _, addr := range []string{"10.96.0.20:80", framework.NodeIP + ":30080"} {
			expectRealServers(t, vss, "TCP", addr, rs...)
		}
		if m := framework.IPSetMembers(t, "KUBE-NODE-PORT-TCP"); !slices.Contains(m, "30080") {
			t.Errorf("KUBE-NODE-PORT-TCP members %q lack 30080", m)
		}
		if m := framework.IPSetMembers(t, "KUBE-NODE-PORT-LOCAL-TCP"); len(m) != 0 {
			t.Errorf("KUBE-NODE-PORT-LOCAL-TCP members %q, want none (externalTrafficPolicy Cluster)", m)
		}
		for _, c := range []struct {
			name   string
			client framework.Client
		}{{"client namespace", allowed}, {"node", framework.Client{}}} {
			target := framework.NodeIP + ":30080"
			spread, sources := requestsWithSource(t, c.client, target, 6)
			t.Logf("NodePort %s from the %s: 6 requests, %s; backends saw sources %v", target, c.name, spread, sources)
			if len(spread) != 2 {
				t.Errorf("NodePort %s from the %s: %s, want both backends", target, c.name, spread)
			}
			if len(sources) != 1 || sources[0] != framework.NodeIP {
				t.Errorf("NodePort %s from the %s: backends saw %v, want only %s (masqueraded)", target, c.name, sources, framework.NodeIP)
			}
		}
	})

	t.Run("NodePort on 127.0.0.1", func(t *testing.T) {
		// IPVS's NAT transmitter refuses to send a packet with a loopback
		// source to a non-local real server (crosses_local_route_boundary()
		// in net/netfilter/ipvs/ip_vs_xmit.c): a virtual server there would
		// schedule the SYN and drop it, the client would hang. Like
		// kube-proxy's ipvs mode (kubernetes#96879), ipvs-proxy does not
		// program one, and does not need route_localnet.
		if vs := framework.FindVirtualServer(vss, "TCP", "127.0.0.1:30080"); vs != nil {
			t.Errorf("a virtual server on 127.0.0.1:30080 only swallows connections:\n%s", ipvsadmText(t))
		}
		if v := framework.ReadSysctl(t, "net.ipv4.conf.all.route_localnet"); v != "0" {
			t.Errorf("net.ipv4.conf.all.route_localnet = %s, want 0", v)
		}
		start := time.Now()
		_, err := framework.Client{Timeout: 3 * time.Second}.HTTPGet("127.0.0.1:30080")
		if !framework.IsRefused(err) {
			t.Fatalf("127.0.0.1:30080 from the node: want connection refused, got %v", err)
		}
		t.Logf("127.0.0.1:30080 refused after %v; the NodePort answers on %s:30080", time.Since(start).Round(time.Millisecond), framework.NodeIP)
	})

	t.Run("externalIPs", func(t *testing.T) {
		for _, addr := range []string{"10.96.0.21:80", "203.0.113.10:80", framework.NodeIP + ":80"} {
			expectRealServers(t, vss, "TCP", addr, rs...)
		}
		if !slices.Contains(bound, "203.0.113.10/32") || slices.Contains(bound, framework.NodeIP+"/32") {
			t.Errorf("kube-ipvs0 holds %v: want 203.0.113.10/32, and not the node's own %s", bound, framework.NodeIP)
		}
		m := framework.IPSetMembers(t, "KUBE-EXTERNAL-IP")
		for _, want := range []string{"203.0.113.10,tcp:80", framework.NodeIP + ",tcp:80"} {
			if !slices.Contains(m, want) {
				t.Errorf("KUBE-EXTERNAL-IP members %q lack %s", m, want)
			}
		}
		for _, target := range []string{"203.0.113.10:80", framework.NodeIP + ":80"} {
			spread := requests(t, allowed, framework.HTTP, target, 6)
			t.Logf("externalIP %s from a client namespace: 6 requests, %s", target, spread)
			if len(spread) != 2 {
				t.Errorf("externalIP %s: %s, want both backends", target, spread)
			}
		}
	})

	t.Run("LoadBalancer source ranges", func(t *testing.T) {
		const lbIP = "198.51.100.10"
		expectRealServers(t, vss, "TCP", lbIP+":80", rs...)
		if !slices.Contains(bound, lbIP+"/32") {
			t.Errorf("kube-ipvs0 holds %v, want %s/32", bound, lbIP)
		}
		for set, want := range map[string]string{
			"KUBE-LOAD-BALANCER":             lbIP + ",tcp:80",
			"KUBE-LOAD-BALANCER-FW":          lbIP + ",tcp:80",
			"KUBE-LOAD-BALANCER-SOURCE-CIDR": lbIP + ",tcp:80,10.250.1.0/24",
		} {
			if m := framework.IPSetMembers(t, set); !slices.Contains(m, want) {
				t.Errorf("%s members %q lack %s", set, m, want)
			}
		}
		spread := requests(t, allowed, framework.HTTP, lbIP+":80", 6)
		t.Logf("%s:80 from 10.250.1.2 (inside the source range): 6 requests, %s", lbIP, spread)

		denied := framework.Client{NS: deniedNS.Name, Timeout: 1500 * time.Millisecond}
		timeouts := 0
		for i := 0; i < 2; i++ {
			r, err := denied.HTTPGet(lbIP + ":80")
			switch {
			case err == nil:
				t.Errorf("%s:80 from 10.250.2.2 (outside the source range) answered by %s", lbIP, r.Backend)
			case !framework.IsTimeout(err):
				t.Errorf("%s:80 from 10.250.2.2: %v; want a timeout (dropped), not another error", lbIP, err)
			default:
				timeouts++
			}
		}
		spread = requests(t, deniedNS.Client(), framework.HTTP, "10.96.0.22:80", 4)
		t.Logf("%s:80 from 10.250.2.2 (outside the source range): %d of 2 requests timed out; its ClusterIP 10.96.0.22:80 answered: %s",
			lbIP, timeouts, spread)
	})
}

// requestsWithSource makes n HTTP requests and returns the answers per
// backend and the distinct source addresses (without port) the backends saw.
func requestsWithSource(t testing.TB, c framework.Client, target string, n int) (counts, []string) {
	t.Helper()
	seen := counts{}
	var sources []string
	for i := 0; i < n; i++ {
		r, err := c.HTTPGet(target)
		if err != nil {
			t.Fatalf("http %s, request %d of %d: %v", target, i+1, n, err)
		}
		seen[r.Backend]++
		host, _, err := net.SplitHostPort(r.Source)
		if err != nil {
			host = r.Source
		}
		if !slices.Contains(sources, host) {
			sources = append(sources, host)
		}
	}
	slices.Sort(sources)
	return seen, sources
}
