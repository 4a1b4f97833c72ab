package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// echoService is a Service with a DNS-like UDP port and an HTTP port.
const echoService = `apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  clusterIP: 10.96.0.53
  ports:
  - {name: dns, port: 53, targetPort: 53, protocol: UDP}
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
`

func echoSlice(ips ...string) string {
	return sliceYAML("echo", "echo-1", []string{"dns=53/UDP", "http=8080/TCP"}, onNode("node-1", ips...))
}

// TestUDPAndHairpin: a UDP Service, and a backend reaching its own Service.
//   - UDP: ipvsadm -Ln shows `UDP 10.96.0.53:53 rr` with both backends,
//     KUBE-CLUSTER-IP holds 10.96.0.53,udp:53, and datagrams from a client
//     namespace and from the node reach both backends;
//   - hairpin: a backend's requests to its own Service (HTTP and UDP) are all
//     answered, some by itself (masqueraded through KUBE-LOOP-BACK, else its
//     answer would not come back through IPVS);
//   - a removed UDP endpoint is deleted at once (no draining at weight 0), and
//     a flow that kept one 5-tuple towards it moves to the other backend
//     (its conntrack entries are flushed).
func TestUDPAndHairpin(t *testing.T) { framework.EachRulesBackend(t, udpAndHairpin) }

// udpAndHairpin is TestUDPAndHairpin with one rules backend (framework.CurrentRulesBackend).
func udpAndHairpin(t *testing.T) {
	framework.ResetKernel(t)
	a := framework.NewBackend(t, "pod-a", "10.244.1.2")
	framework.NewBackend(t, "pod-b", "10.244.2.2")
	client := framework.NewClientNS(t, "client", "10.250.0.2")
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "echo.yaml", echoService)
	framework.WriteManifest(t, dir, "echo-slice.yaml", echoSlice("10.244.1.2", "10.244.2.2"))
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)
	const udp, http = "10.96.0.53:53", "10.96.0.53:80"

	t.Run("UDP", func(t *testing.T) {
		vs := expectRealServers(t, framework.IPVSServices(t), "UDP", udp, "10.244.1.2:53", "10.244.2.2:53")
		if vs != nil && vs.Scheduler != "rr" {
			t.Errorf("ipvsadm -Ln shows %q, want rr", vs.Line)
		}
		if m := framework.IPSetMembers(t, "KUBE-CLUSTER-IP"); !strings.Contains(strings.Join(m, " "), "10.96.0.53,udp:53") {
			t.Errorf("KUBE-CLUSTER-IP members %q lack 10.96.0.53,udp:53", m)
		}
		for _, c := range []struct {
			name   string
			client framework.Client
		}{{"a client namespace", client.Client()}, {"the node", framework.Client{}}} {
			spread := requests(t, c.client, framework.UDP, udp, 10)
			t.Logf("UDP %s from %s: 10 datagrams (one socket each), %s", udp, c.name, spread)
			if len(spread) != 2 {
				t.Errorf("UDP %s from %s: %s, want both backends", udp, c.name, spread)
			}
		}
	})

	t.Run("hairpin", func(t *testing.T) {
		spread, sources := requestsWithSource(t, a.Client(), http, 10)
		t.Logf("HTTP %s from backend pod-a itself: 10 requests, %s; backends saw sources %v", http, spread, sources)
		if spread["pod-a"] == 0 {
			t.Errorf("HTTP %s from pod-a: %s; want some answered by pod-a itself (hairpin)", http, spread)
		}
		spread = requests(t, a.Client(), framework.UDP, udp, 10)
		t.Logf("UDP %s from backend pod-a itself: 10 datagrams, %s", udp, spread)
		if spread["pod-a"] == 0 {
			t.Errorf("UDP %s from pod-a: %s; want some answered by pod-a itself (hairpin)", udp, spread)
		}
	})

	t.Run("removed UDP endpoint", func(t *testing.T) {
		conn, err := client.Client().Dial("udp", udp)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		first := counts{}
		for i := 0; i < 3; i++ {
			name, err := framework.Ask(conn, time.Second)
			if err != nil {
				t.Fatalf("UDP flow %s → %s, datagram %d: %v", conn.LocalAddr(), udp, i+1, err)
			}
			first[name]++
		}
		if first.only() == "" {
			t.Fatalf("one UDP flow (one 5-tuple) went to %s, want one backend", first)
		}
		gone, stays := "10.244.1.2", "pod-b"
		if first.only() == "pod-b" {
			gone, stays = "10.244.2.2", "pod-a"
		}
		t.Logf("UDP flow %s → %s goes to %s; removing that endpoint", conn.LocalAddr(), udp, first.only())
		remaining := map[string]string{"10.244.1.2": "10.244.2.2", "10.244.2.2": "10.244.1.2"}[gone]
		framework.WriteManifest(t, dir, "echo-slice.yaml", echoSlice(remaining))

		removed := time.Now()
		framework.Eventually(t, 10*time.Second, func() error {
			vs := framework.IPVSService(t, "UDP", udp)
			if vs == nil || vs.RealServer(gone+":53") != nil {
				return fmt.Errorf("UDP %s still holds %s:53:\n%s", udp, gone, ipvsadmText(t))
			}
			return nil
		})
		t.Logf("%s:53 deleted from UDP %s %.1fs after the slice changed (no draining)", gone, udp, time.Since(removed).Seconds())

		sent, lost := 0, 0
		var answeredBy string
		deadline := time.Now().Add(10 * time.Second)
		for answeredBy != stays && time.Now().Before(deadline) {
			sent++
			name, err := framework.Ask(conn, 500*time.Millisecond)
			if err != nil {
				lost++
				continue
			}
			answeredBy = name
		}
		t.Logf("the same UDP flow after the removal: %d datagrams until %s answered (%d unanswered)", sent, answeredBy, lost)
		if answeredBy != stays {
			t.Errorf("UDP flow %s → %s still not answered by %s 10 s after %s was deleted (last answer %q)",
				conn.LocalAddr(), udp, stays, gone, answeredBy)
		}
	})
}
