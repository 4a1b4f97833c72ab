package e2e

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// changesService is web (HTTP on 80, long-lived lines on 9000), with an
// optional per-Service scheduler annotation.
func changesService(scheduler string) string {
	ann := ""
	if scheduler != "" {
		ann = fmt.Sprintf("\n  annotations: {ipvs-proxy.io/scheduler: %s}", scheduler)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default%s
spec:
  clusterIP: 10.96.0.10
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
  - {name: line, port: 9000, targetPort: 9000, protocol: TCP}
`, ann)
}

func changesSlice(ips ...string) string {
	return sliceYAML("web", "web-1", []string{"http=8080/TCP", "line=9000/TCP"}, onNode("node-1", ips...))
}

// TestChangesUnderLoad changes a Service while a client loop sends a request
// every 20 ms and one TCP connection stays open:
//   - add an endpoint: it shows in ipvsadm and starts receiving requests;
//   - change the scheduler (annotation ipvs-proxy.io/scheduler): the daemon
//     plans edit-vs only, ipvsadm shows wlc, the open connection still
//     answers from its backend;
//   - remove the endpoint holding the open connection: it stays in ipvsadm
//     at weight 0 (ActiveConn 1) while the connection is open, gets no new
//     requests, and the connection still answers; once the connection is
//     reset (SO_LINGER 0, so IPVS holds it 10 s in CLOSE instead of 2 minutes
//     in TIME_WAIT) the real server disappears;
//   - the load saw 0 failed requests in each of these steps, except that the
//     scheduler change may refuse a new connection or two: a limit of IPVS,
//     not of the daemon (see refusedBySwap);
//   - delete the Service: its virtual servers, its kube-ipvs0 address and its
//     ipset members are gone.
func TestChangesUnderLoad(t *testing.T) {
	framework.ResetKernel(t)
	ips := map[string]string{"pod-a": "10.244.1.2", "pod-b": "10.244.2.2", "pod-c": "10.244.3.2"}
	for name, ip := range ips {
		framework.NewBackend(t, name, ip)
	}
	// Generous timeouts: a busy emulated CPU may take seconds to answer, and
	// a dropped connection is refused or reset, not slow.
	client := framework.Client{NS: framework.NewClientNS(t, "client", "10.250.0.2").Name, Timeout: 5 * time.Second}
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "web.yaml", changesService(""))
	framework.WriteManifest(t, dir, "web-slice.yaml", changesSlice(ips["pod-a"], ips["pod-b"]))
	// a directory emptied is kept as it was (a mount gone, more likely than
	// a wish to remove every Service): deleting the Service's files below
	// removes it because this one stays
	framework.WriteManifest(t, dir, "keep.yaml", "# no objects\n")
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir, ExtraArgs: []string{"--drain-check-period", "1s"}})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)
	const http, line = "10.96.0.10:80", "10.96.0.10:9000"

	load := framework.StartLoad(t, client, framework.HTTP, http)
	conn, err := client.OpenLine(line)
	if err != nil {
		t.Fatalf("open a long-lived connection: %v", err)
	}
	defer conn.Close()
	holder, err := conn.Ask()
	if err != nil {
		t.Fatalf("long-lived connection: %v", err)
	}
	t.Logf("long-lived connection %s → %s is served by %s", conn.LocalAddr(), line, holder)
	framework.Eventually(t, 10*time.Second, func() error {
		if n := load.Snapshot().Sent; n < 20 {
			return fmt.Errorf("the load has sent %d requests", n)
		}
		return nil
	})
	stillServed := func(t *testing.T, when string) {
		t.Helper()
		if got, err := conn.Ask(); err != nil || got != holder {
			t.Fatalf("long-lived connection %s: answered by %q, %v; want %s", when, got, err, holder)
		}
	}

	steps := []struct {
		name string
		// swaps says the step changes a scheduler in place, which may refuse
		// a new connection (see refusedBySwap).
		swaps bool
		run   func(t *testing.T)
	}{
		{"add an endpoint", false, func(t *testing.T) {
			before := load.Snapshot()
			framework.WriteManifest(t, dir, "web-slice.yaml", changesSlice(ips["pod-a"], ips["pod-b"], ips["pod-c"]))
			changed := time.Now()
			framework.Eventually(t, 15*time.Second, func() error {
				if n := load.Snapshot().Backends["pod-c"]; n == 0 {
					return fmt.Errorf("pod-c has received no request yet")
				}
				return nil
			})
			t.Logf("pod-c got its first request %.1fs after the slice changed (load before: %s)",
				time.Since(changed).Seconds(), before)
			expectRealServers(t, framework.IPVSServices(t), "TCP", http, ips["pod-a"]+":8080", ips["pod-b"]+":8080", ips["pod-c"]+":8080")
		}},
		{"change the scheduler in place", true, func(t *testing.T) {
			syncs := len(proxy.Syncs())
			framework.WriteManifest(t, dir, "web.yaml", changesService("wlc"))
			framework.Eventually(t, 15*time.Second, func() error {
				for _, addr := range []string{http, line} {
					if vs := framework.IPVSService(t, "TCP", addr); vs == nil || vs.Scheduler != "wlc" {
						return fmt.Errorf("TCP %s not yet wlc:\n%s", addr, ipvsadmText(t))
					}
				}
				return nil
			})
			var ops []string
			for _, s := range proxy.Syncs()[syncs:] {
				ops = append(ops, s.Planned...)
			}
			if len(ops) != 2 || !strings.HasPrefix(ops[0], "edit-vs ") || !strings.HasPrefix(ops[1], "edit-vs ") {
				t.Errorf("the scheduler change planned %q, want two edit-vs (ports 80 and 9000) and nothing else", ops)
			}
			stillServed(t, "after the scheduler change")
			t.Logf("scheduler now wlc through %q; load so far: %s", ops, load.Snapshot())
		}},
		{"remove the endpoint holding the connection", false, func(t *testing.T) {
			var keep []string
			for name, ip := range ips {
				if name != holder {
					keep = append(keep, ip)
				}
			}
			slices.Sort(keep)
			framework.WriteManifest(t, dir, "web-slice.yaml", changesSlice(keep...))
			drained := ips[holder] + ":9000"
			framework.Eventually(t, 15*time.Second, func() error {
				vs := framework.IPVSService(t, "TCP", line)
				if rs := vs.RealServer(drained); rs == nil || rs.Weight != 0 || rs.ActiveConn != 1 {
					return fmt.Errorf("TCP %s: want %s at weight 0 with ActiveConn 1:\n%s", line, drained, ipvsadmText(t))
				}
				return nil
			})
			// The load may have been answered by the holder up to the
			// change; afterwards no new connection may reach it.
			time.Sleep(500 * time.Millisecond)
			sentTo := load.Snapshot().Backends[holder]
			time.Sleep(2500 * time.Millisecond) // more than two drain checks
			if n := load.Snapshot().Backends[holder]; n != sentTo {
				t.Errorf("%s got %d new requests while drained at weight 0", holder, n-sentTo)
			}
			vs := framework.IPVSService(t, "TCP", line)
			if rs := vs.RealServer(drained); rs == nil || rs.Weight != 0 {
				t.Errorf("TCP %s: %s was deleted while its connection is open:\n%s", line, drained, ipvsadmText(t))
			}
			stillServed(t, "while its backend drains")
			t.Logf("drained, connection still open:\n%s", ipvsadmText(t))
		}},
		{"reset connection lets the drained endpoint go", false, func(t *testing.T) {
			if err := conn.Conn.(*net.TCPConn).SetLinger(0); err != nil {
				t.Fatal(err)
			}
			_ = conn.Close()
			closed := time.Now()
			drained := ips[holder] + ":9000"
			framework.Eventually(t, 30*time.Second, func() error {
				if vs := framework.IPVSService(t, "TCP", line); vs.RealServer(drained) != nil {
					return fmt.Errorf("TCP %s still holds %s", line, drained)
				}
				return nil
			})
			t.Logf("%s left TCP %s %.1fs after the connection was reset", drained, line, time.Since(closed).Seconds())
			if rs := framework.IPVSService(t, "TCP", http).RealServer(ips[holder] + ":8080"); rs != nil {
				t.Logf("TCP %s still drains %s (weight %d, InActConn %d: the load's closed connections in IPVS's TIME_WAIT, up to 2 minutes)",
					http, rs.Addr, rs.Weight, rs.InActConn)
			}
		}},
		{"delete the Service", false, func(t *testing.T) {
			res := load.Stop() // requests are expected to fail from here on
			t.Logf("load through all changes: %s", res)
			framework.RemoveManifest(t, dir, "web.yaml")
			framework.RemoveManifest(t, dir, "web-slice.yaml")
			framework.Eventually(t, 15*time.Second, func() error {
				for _, vs := range framework.IPVSServices(t) {
					if strings.HasPrefix(vs.Addr, "10.96.0.10:") {
						return fmt.Errorf("virtual server %s left", vs.Line)
					}
				}
				return nil
			})
			if addrs := framework.Addrs(t, "kube-ipvs0"); slices.Contains(addrs, "10.96.0.10/32") {
				t.Errorf("kube-ipvs0 still holds 10.96.0.10/32: %v", addrs)
			}
			for _, set := range []string{"KUBE-CLUSTER-IP", "KUBE-IPVS-IPS", "KUBE-LOOP-BACK"} {
				if m := framework.IPSetMembers(t, set); len(m) != 0 {
					t.Errorf("%s still holds %q", set, m)
				}
			}
			if _, err := client.HTTPGet(http); err == nil {
				t.Errorf("%s still answers after the Service was deleted", http)
			}
		}},
	}
	before := load.Snapshot()
	if before.Failed != 0 {
		t.Fatalf("load before any change: %s", before)
	}
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			s.run(t)
			if s.name == "delete the Service" {
				return
			}
			after := load.Snapshot()
			defer func() { before = after }()
			failed, errs := after.Failed-before.Failed, subtractCounts(after.Errors, before.Errors)
			switch {
			case failed == 0:
				t.Logf("load during this step: %d requests, 0 failed", after.Sent-before.Sent)
			case s.swaps && failed <= refusedBySwap && onlyRefused(errs):
				t.Logf("load during this step: %d requests, %d refused while IPVS swapped the scheduler: %v",
					after.Sent-before.Sent, failed, errs)
			default:
				t.Errorf("load during this step: %d of %d requests failed, want 0: %v", failed, after.Sent-before.Sent, errs)
			}
		})
		if !ok {
			t.Fatalf("step %q failed; the next steps depend on it", s.name)
		}
	}
}

// refusedBySwap bounds the new connections a scheduler change in place may
// refuse at the load's rate. The kernel's ip_vs_edit_service() unbinds the
// old scheduler and waits for an RCU grace period before binding the new
// one; a SYN that arrives in between finds no scheduler and is answered
// with ICMP port unreachable (ip_vs_leave), so the client sees "connection
// refused". Measured without the daemon (ipvsadm -E rr<->wlc, 40 times
// under a client loop): 25 of 853 connections refused, against 0 of 810
// for 40 weight changes. The load hits one of the two edited virtual
// servers.
const refusedBySwap = 2

// onlyRefused reports whether every error is a refused connection.
func onlyRefused(errs map[string]int) bool {
	for e := range errs {
		if !strings.Contains(e, "connection refused") {
			return false
		}
	}
	return true
}

// subtractCounts returns a-b per key, without the zeros.
func subtractCounts(a, b map[string]int) map[string]int {
	out := map[string]int{}
	for k, n := range a {
		if d := n - b[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}
