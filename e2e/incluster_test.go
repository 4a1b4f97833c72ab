package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// inClusterManifests: two LoadBalancer Services with externalTrafficPolicy
// Local, an external IP and a NodePort each: "etp" has an endpoint on this
// node (node-1) and two on node-2, "etp-remote" only the two on node-2.
func inClusterManifests() string {
	ports := []string{"http=8080/TCP"}
	svc := func(name, clusterIP, extIP, lbIP, nodePort string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: %s, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: %s
  externalIPs: [%s]
  externalTrafficPolicy: Local
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: %s, protocol: TCP}
status:
  loadBalancer:
    ingress:
    - ip: %s
`, name, clusterIP, extIP, nodePort, lbIP)
	}
	remote := onNode("node-2", "10.244.2.2", "10.244.3.2")
	return joinYAML(
		svc("etp", "10.96.0.80", "203.0.113.30", "198.51.100.30", "30095"),
		sliceYAML("etp", "etp-1", ports, append(onNode("node-1", "10.244.1.2"), remote...)),
		svc("etp-remote", "10.96.0.81", "203.0.113.31", "198.51.100.31", "30096"),
		sliceYAML("etp-remote", "etp-remote-1", ports, remote))
}

// TestTrafficPolicyLocalInCluster: externalTrafficPolicy Local is for external
// clients; traffic that starts inside the cluster goes to every endpoint, as
// in kube-proxy's iptables and nftables modes (kube-proxy's ipvs mode sends
// everyone everywhere instead when the node has no local endpoint,
// kubernetes#97081). Each Service's load balancer IP, external IP and NodePort
// is asked 9 times from an outside client (10.250.0.2), a pod on this node
// (10.244.9.2, inside clusterCIDR 10.244.0.0/16) and the node:
//   - "etp" (one local endpoint, two remote): the outside client reaches only
//     the local one and keeps its source; the pod reaches all three and keeps
//     its source; the node reaches all three, masqueraded to its address;
//   - "etp-remote" (no local endpoint): the outside client is refused; the pod
//     and the node reach both remote endpoints.
//
// The kernel shows why: one firewall-mark virtual server per Service with all
// endpoints, and KUBE-EXTERNAL-LOCAL-MARK mapping each external address and
// port to its mark.
func TestTrafficPolicyLocalInCluster(t *testing.T) {
	framework.EachRulesBackend(t, trafficPolicyLocalInCluster)
}

// trafficPolicyLocalInCluster is TestTrafficPolicyLocalInCluster with one rules backend (framework.CurrentRulesBackend).
func trafficPolicyLocalInCluster(t *testing.T) {
	framework.ResetKernel(t)
	framework.NewBackend(t, "local-a", "10.244.1.2")
	framework.NewBackend(t, "remote-b", "10.244.2.2")
	framework.NewBackend(t, "remote-c", "10.244.3.2")
	outside := framework.NewClientNS(t, "outside", "10.250.0.2")
	pod := framework.NewClientNS(t, "pod", "10.244.9.2")
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "etp.yaml", inClusterManifests())
	cfg := writeConfig(t, t.TempDir(), "clusterCIDR: 10.244.0.0/16\n")
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir, ConfigFile: cfg})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)

	marks := framework.IPSetMembers(t, "KUBE-EXTERNAL-LOCAL-MARK")
	t.Logf("KUBE-EXTERNAL-LOCAL-MARK: %v", marks)
	for _, want := range []string{"198.51.100.30,tcp:80", "203.0.113.30,tcp:80", framework.NodeIP + ",tcp:30095",
		"198.51.100.31,tcp:80", "203.0.113.31,tcp:80", framework.NodeIP + ",tcp:30096"} {
		if !slices.ContainsFunc(marks, func(m string) bool { return strings.HasPrefix(m, want+" skbmark ") }) {
			t.Errorf("KUBE-EXTERNAL-LOCAL-MARK lacks %s with a mark", want)
		}
	}
	var fwm []string
	for _, vs := range framework.IPVSServices(t) {
		if vs.Proto == "FWM" {
			fwm = append(fwm, vs.Line+" with "+fmt.Sprint(len(vs.RealServers))+" real servers")
		}
	}
	t.Logf("firewall-mark virtual servers: %v", fwm)
	if len(fwm) != 2 {
		t.Errorf("%d firewall-mark virtual servers, want 2:\n%s", len(fwm), ipvsadmText(t))
	}

	clients := []struct {
		name   string
		client framework.Client
		// sources the backends may see: the client's own, or the node's
		source string
	}{
		{"outside client (10.250.0.2)", outside.Client(), outside.IP},
		{"pod (10.244.9.2)", pod.Client(), pod.IP},
		{"node", framework.Client{}, framework.NodeIP},
	}
	for _, s := range []struct {
		name    string
		targets []string
		// answering backends per client above; nil: refused
		want [][]string
	}{
		{"etp", []string{"198.51.100.30:80", "203.0.113.30:80", framework.NodeIP + ":30095"},
			[][]string{{"local-a"}, {"local-a", "remote-b", "remote-c"}, {"local-a", "remote-b", "remote-c"}}},
		{"etp-remote", []string{"198.51.100.31:80", "203.0.113.31:80", framework.NodeIP + ":30096"},
			[][]string{nil, {"remote-b", "remote-c"}, {"remote-b", "remote-c"}}},
	} {
		for _, target := range s.targets {
			for i, c := range clients {
				if s.want[i] == nil {
					quick := c.client
					quick.Timeout = 1500 * time.Millisecond
					r, err := quick.HTTPGet(target)
					if err == nil {
						t.Errorf("%s %s from the %s: answered by %s, want refused (no local endpoint)", s.name, target, c.name, r.Backend)
						continue
					}
					t.Logf("%s %s from the %s: not answered (%v)", s.name, target, c.name, err)
					continue
				}
				spread, sources := requestsWithSource(t, c.client, target, 9)
				t.Logf("%s %s from the %s: 9 requests, %s; backends saw %v", s.name, target, c.name, spread, sources)
				var got []string
				for b := range spread {
					got = append(got, b)
				}
				slices.Sort(got)
				if !slices.Equal(got, s.want[i]) {
					t.Errorf("%s %s from the %s: answered by %v, want %v", s.name, target, c.name, got, s.want[i])
				}
				if !slices.Equal(sources, []string{c.source}) {
					t.Errorf("%s %s from the %s: backends saw %v, want %s", s.name, target, c.name, sources, c.source)
				}
			}
		}
	}
	if t.Failed() {
		t.Logf("mangle table:\n%s", strings.TrimSpace(framework.Run(t, "iptables-save", "-t", "mangle")))
	}
}
