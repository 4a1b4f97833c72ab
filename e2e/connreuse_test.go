package e2e

import (
	"net"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// connReuseManifests: a ClusterIP Service in front of two backends' line
// servers.
func connReuseManifests() string {
	return joinYAML(`apiVersion: v1
kind: Service
metadata: {name: reuse, namespace: default}
spec:
  clusterIP: 10.96.0.60
  ports:
  - {name: line, port: 9000, targetPort: 9000, protocol: TCP}
`, sliceYAML("reuse", "reuse-1", []string{"line=9000/TCP"}, onNode("node-2", "10.244.1.2", "10.244.2.2")))
}

// TestConnReuseMode: net/ipv4/vs/conn_reuse_mode as kube-proxy sets it
// (kubernetes#93297): left alone on this 6.1 kernel, where IPVS reschedules a
// new connection that reuses the client port of a closed one at once; set to
// 0 when the daemon runs as if on a 5.4 kernel (--kernel-release-override),
// where rescheduling such a connection costs a one-second SYN retransmission
// and kube-proxy turns reuse off. The traffic shows the setting: six
// connections from one client port, each closed with a reset, alternate
// between the backends with 1 and all reach the first backend with 0 (IPVS
// reuses its connection entry).
func TestConnReuseMode(t *testing.T) {
	framework.ResetKernel(t)
	framework.NewBackend(t, "pod-a", "10.244.1.2")
	framework.NewBackend(t, "pod-b", "10.244.2.2")
	client := framework.NewClientNS(t, "client", "10.250.0.2")
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "reuse.yaml", connReuseManifests())
	opts := framework.Options{ManifestDir: dir}

	for _, c := range []struct {
		name, release, want string
		oneBackend          bool
		port                int
	}{
		{name: "kernel 6.1: left alone", want: "1", port: 41001},
		{name: "kernel 5.4: set to 0", release: "5.4.0-150-generic", want: "0", oneBackend: true, port: 41002},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := opts
			if c.release != "" {
				o.ExtraArgs = []string{"--kernel-release-override", c.release}
			}
			proxy := framework.StartProxy(t, o)
			proxy.WaitFullSyncs(t, 1, 30*time.Second)
			if got := framework.ReadSysctl(t, "net.ipv4.vs.conn_reuse_mode"); got != c.want {
				t.Errorf("net.ipv4.vs.conn_reuse_mode = %s, want %s", got, c.want)
			}
			seen := reusedPortRequests(t, client.Client(), c.port, "10.96.0.60:9000", 6)
			t.Logf("6 connections from %s:%d, each reset: %s", client.IP, c.port, seen)
			switch {
			case c.oneBackend && len(seen) != 1:
				t.Errorf("conn_reuse_mode 0: %s, want every connection on the first backend (IPVS reuses its entry)", seen)
			case !c.oneBackend && len(seen) != 2:
				t.Errorf("conn_reuse_mode 1: %s, want both backends (each new connection rescheduled)", seen)
			}
			_ = proxy.Stop() // the next run adopts the kernel state; its client port is another
		})
	}
}

// reusedPortRequests opens n connections to target one after the other, all
// from the same client port, each closed with a reset (so the client keeps no
// TIME_WAIT and the port is free at once), and counts the answering backends.
func reusedPortRequests(t testing.TB, c framework.Client, port int, target string, n int) counts {
	t.Helper()
	c.SourcePort = port
	seen := counts{}
	for i := 0; i < n; i++ {
		conn, err := c.Dial("tcp", target)
		if err != nil {
			t.Fatalf("connection %d of %d from port %d: %v", i+1, n, port, err)
		}
		name, err := framework.Ask(conn, framework.DefaultTimeout)
		_ = conn.(*net.TCPConn).SetLinger(0)
		_ = conn.Close()
		if err != nil {
			t.Fatalf("connection %d of %d from port %d: %v", i+1, n, port, err)
		}
		seen[name]++
	}
	return seen
}
