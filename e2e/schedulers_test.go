package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// schedulers are the IPVS schedulers kube-proxy's ipvs.scheduler accepts.
var schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh"}

// webLineService is a ClusterIP Service with an HTTP port and a port for
// long-lived connections.
const webLineService = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
  - {name: line, port: 9000, targetPort: 9000, protocol: TCP}
`

// webLineSlice is webLineService's EndpointSlice with endpoints ips on node-1.
func webLineSlice(ips ...string) string {
	return sliceYAML("web", "web-1", []string{"http=8080/TCP", "line=9000/TCP"}, onNode("node-1", ips...))
}

// schedulersWeb is webLineService on three backends.
func schedulersWeb() string {
	return joinYAML(webLineService, webLineSlice("10.244.1.2", "10.244.2.2", "10.244.3.2"))
}

// TestSchedulers runs the daemon once per scheduler, set through --config
// (ipvs.scheduler), on the same Service and backends. Each run is a restart
// onto the previous run's kernel state, so it also checks that a scheduler
// change edits the virtual servers in place:
//   - ipvsadm -Ln shows `TCP 10.96.0.10:80 <scheduler>` (mh with its
//     mh-port flag, as kube-proxy sets it) with the three real servers;
//   - the restarted daemon's first full sync plans edit-vs operations and
//     never deletes or re-adds a virtual or real server;
//   - requests from a client namespace are all answered; with sh, each of two
//     clients always reaches the same backend;
//   - a TCP connection opened in the first run keeps being answered by the
//     same backend through every change, and the virtual server's lifetime
//     connection counter (ipvsadm --stats) counts every request of every run:
//     it was never reset by a re-creation.
func TestSchedulers(t *testing.T) {
	framework.ResetKernel(t)
	for i, ip := range []string{"10.244.1.2", "10.244.2.2", "10.244.3.2"} {
		framework.NewBackend(t, fmt.Sprintf("pod-%c", 'a'+i), ip)
	}
	client1 := framework.NewClientNS(t, "client1", "10.250.0.2").Client()
	client2 := framework.NewClientNS(t, "client2", "10.250.0.3").Client()
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "web.yaml", schedulersWeb())
	cfgDir := t.TempDir()

	const http, line = "10.96.0.10:80", "10.96.0.10:9000"
	const perRun = 6
	var conn *framework.LineConn
	var connBackend string
	sent := 0 // connections made to http over all runs
	parent := t
	for _, sched := range schedulers {
		ok := t.Run(sched, func(t *testing.T) {
			cfg := writeConfig(t, cfgDir, "ipvs:\n  scheduler: "+sched+"\n")
			proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir, ConfigFile: cfg})
			first := proxy.WaitFullSyncs(t, 1, 30*time.Second)[0]
			if first.Failed != 0 || first.Incomplete() {
				t.Fatalf("first full sync: %s", first)
			}
			if conn != nil {
				checkEditedInPlace(t, first, sched)
			}

			vss := framework.IPVSServices(t)
			for addr, target := range map[string]string{http: "8080", line: "9000"} {
				vs := expectRealServers(t, vss, "TCP", addr, "10.244.1.2:"+target, "10.244.2.2:"+target, "10.244.3.2:"+target)
				if vs == nil {
					continue
				}
				wantFlags := map[string]string{"mh": "mh-port"}[sched]
				if vs.Scheduler != sched || vs.SchedFlags != wantFlags {
					t.Errorf("ipvsadm -Ln shows %q, want scheduler %s flags %q", vs.Line, sched, wantFlags)
				}
			}

			spread1 := requests(t, client1, framework.HTTP, http, perRun)
			sent += perRun
			msg := fmt.Sprintf("%s: client1 %s", sched, spread1)
			if sched == "sh" {
				spread2 := requests(t, client2, framework.HTTP, http, perRun)
				sent += perRun
				msg += fmt.Sprintf(", client2 %s", spread2)
				if spread1.only() == "" || spread2.only() == "" {
					t.Errorf("sh: each client must stick to one backend: client1 %s, client2 %s", spread1, spread2)
				}
			}
			t.Logf("%s (first full sync: %s)", msg, first)

			if conn == nil {
				var err error
				if conn, err = client1.OpenLine(line); err != nil {
					t.Fatalf("open a long-lived connection: %v", err)
				}
				parent.Cleanup(func() { conn.Close() })
				if connBackend, err = conn.Ask(); err != nil {
					t.Fatalf("long-lived connection: %v", err)
				}
				t.Logf("long-lived connection to %s answered by %s", line, connBackend)
				return
			}
			if got, err := conn.Ask(); err != nil || got != connBackend {
				t.Errorf("long-lived connection after the change to %s: answered by %q, %v; want %s", sched, got, err, connBackend)
			}
		})
		if !ok && conn == nil {
			t.Fatal("the first run failed; the others would only repeat it")
		}
	}
	if t.Failed() {
		return // the count below needs every request to have been answered
	}

	// The counters are refreshed every 2 s: wait for them to catch up.
	var total uint64
	deadline := time.Now().Add(6 * time.Second)
	for total = framework.IPVSTotalConns(t, "TCP", http); total < uint64(sent) && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		total = framework.IPVSTotalConns(t, "TCP", http)
	}
	if total != uint64(sent) {
		t.Errorf("TCP %s counted %d connections in its lifetime, want %d (every request of every run): "+
			"a lower count means it was re-created on the way", http, total, sent)
	}
	t.Logf("%s: %d connections over %d scheduler runs, counted by ipvsadm --stats: %d", http, sent, len(schedulers), total)
}

// checkEditedInPlace checks that a restarted daemon's first full sync changed
// the scheduler with edit-vs and re-created nothing.
func checkEditedInPlace(t *testing.T, first framework.Sync, sched string) {
	t.Helper()
	edits := 0
	for _, op := range first.Planned {
		switch {
		case strings.HasPrefix(op, "edit-vs ") && strings.Contains(op, " -s "+sched):
			edits++
		case strings.HasPrefix(op, "add-vs") || strings.HasPrefix(op, "del-vs") ||
			strings.HasPrefix(op, "add-rs") || strings.HasPrefix(op, "del-rs"):
			t.Errorf("restart with scheduler %s re-creates: %s", sched, op)
		}
	}
	if edits != 2 {
		t.Errorf("restart with scheduler %s: %d edit-vs operations, want 2 (ports 80 and 9000); planned:\n  %s",
			sched, edits, strings.Join(first.Planned, "\n  "))
	}
}
