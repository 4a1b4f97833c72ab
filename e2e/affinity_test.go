package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// affinityService is a ClusterIP Service with sessionAffinity ClientIP and
// the given extra spec lines, on backends 10.244.{1,2,3}.2.
func affinityService(name, vip, extra string) string {
	return joinYAML(fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: %s, namespace: default}
spec:
  clusterIP: %s
  sessionAffinity: ClientIP
%s  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
`, name, vip, extra), sliceYAML(name, name+"-1", []string{"http=8080/TCP"},
		onNode("node-1", "10.244.1.2", "10.244.2.2", "10.244.3.2")))
}

// TestSessionAffinity: sessionAffinity ClientIP becomes IPVS persistence.
//   - ipvsadm -Ln shows `rr persistent 10800` (Kubernetes' default timeout)
//     and `rr persistent 60` for a Service with timeoutSeconds 60;
//   - 20 requests from one client all reach one backend, and so do 20 from a
//     second client with another source address (which may be another
//     backend);
//   - ipvsadm -Lnc holds the persistence template of each client (source
//     port 0) pointing at the backend that answered it.
func TestSessionAffinity(t *testing.T) {
	framework.ResetKernel(t)
	ips := map[string]string{"pod-a": "10.244.1.2", "pod-b": "10.244.2.2", "pod-c": "10.244.3.2"}
	for name, ip := range ips {
		framework.NewBackend(t, name, ip)
	}
	clients := []*framework.Namespace{
		framework.NewClientNS(t, "client1", "10.250.0.2"),
		framework.NewClientNS(t, "client2", "10.250.0.3"),
	}
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "sticky.yaml", affinityService("sticky", "10.96.0.12", ""))
	framework.WriteManifest(t, dir, "sticky-short.yaml", affinityService("sticky-short", "10.96.0.13",
		"  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n"))
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)

	vss := framework.IPVSServices(t)
	for addr, timeout := range map[string]int{"10.96.0.12:80": 10800, "10.96.0.13:80": 60} {
		vs := expectRealServers(t, vss, "TCP", addr, "10.244.1.2:8080", "10.244.2.2:8080", "10.244.3.2:8080")
		if vs != nil && (vs.Scheduler != "rr" || vs.Persistent != timeout) {
			t.Errorf("ipvsadm -Ln shows %q, want rr persistent %d", vs.Line, timeout)
		}
	}

	for target, timeout := range map[string]int{"10.96.0.12:80": 10800, "10.96.0.13:80": 60} {
		chosen := map[string]string{} // client IP → backend
		for _, ns := range clients {
			spread := requests(t, ns.Client(), framework.HTTP, target, 20)
			t.Logf("%s from %s (%s): 20 requests, %s", target, ns.Name, ns.IP, spread)
			if spread.only() == "" {
				t.Errorf("%s from %s: requests spread over %s, want one backend", target, ns.IP, spread)
				continue
			}
			chosen[ns.IP] = spread.only()
		}
		conns := framework.IPVSConns(t)
		for client, backend := range chosen {
			tmpl := findTemplate(conns, client, target, ips[backend]+":8080")
			switch {
			case tmpl == nil:
				t.Errorf("ipvsadm -Lnc has no persistence template %s:0 → %s → %s:8080; entries:\n%s",
					client, target, ips[backend], framework.IPVSADM(t, "-Lnc"))
			case expireSeconds(tmpl.Expire) > timeout || expireSeconds(tmpl.Expire) < timeout-30:
				t.Errorf("persistence template %+v expires in %s, want just under %ds", *tmpl, tmpl.Expire, timeout)
			}
		}
		if len(chosen) == 2 {
			t.Logf("%s: the two clients were pinned to %s and %s", target, chosen["10.250.0.2"], chosen["10.250.0.3"])
		}
	}
}

// findTemplate returns the persistence template (source port 0) of client
// for virtual server vip pointing at destination dest, or nil.
func findTemplate(conns []framework.Conn, client, vip, dest string) *framework.Conn {
	for i, c := range conns {
		if c.Source == client+":0" && c.Virtual == vip && c.Destination == dest {
			return &conns[i]
		}
	}
	return nil
}

// expireSeconds converts ipvsadm's "mm:ss" expiry to seconds (-1 if unreadable).
func expireSeconds(s string) int {
	var m, sec int
	if _, err := fmt.Sscanf(s, "%d:%d", &m, &sec); err != nil {
		return -1
	}
	return m*60 + sec
}
