package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/status"
)

// annotatedService is a ClusterIP Service name at vip, port 80 → 8080, with
// the given annotations (YAML flow mapping body, "" for none), on the three
// backends.
func annotatedService(name, vip, annotations string) string {
	meta := fmt.Sprintf("{name: %s, namespace: default}", name)
	if annotations != "" {
		meta = fmt.Sprintf("{name: %s, namespace: default, annotations: {%s}}", name, annotations)
	}
	return joinYAML(fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: %s
spec:
  clusterIP: %s
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
`, meta, vip), sliceYAML(name, name+"-1", []string{"http=8080/TCP"}, onNode("node-1", "10.244.1.2", "10.244.2.2", "10.244.3.2")))
}

// featuresWeb is a NodePort Service (10.96.0.10, node port 30080 for http)
// with a port for long-lived connections, on the given endpoints.
func featuresWeb(ips ...string) string {
	return joinYAML(`apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP}
  - {name: line, port: 9000, targetPort: 9000, nodePort: 30090, protocol: TCP}
`, webLineSlice(ips...))
}

// featureNode is a daemon in standalone mode running the manifests of
// writeFeatureManifests, with web's endpoint drained removed while conn
// (answered by it) stays open: what checkAnnotations, checkStatus and
// checkMetrics look at.
type featureNode struct {
	ips              map[string]string // backend name → IP
	client1, client2 framework.Client
	drained          string // the backend whose endpoint was removed
	conn             *framework.LineConn
}

// writeFeatureManifests writes web (NodePort, on every backend of ips) and
// Services with per-Service annotations: sticky (sh), hashed (mh with
// flags) and typo (an unknown scheduler), and counted (no annotation, no
// traffic until checkMetrics).
func writeFeatureManifests(t *testing.T, dir string, ips map[string]string) {
	t.Helper()
	var all []string
	for _, ip := range ips {
		all = append(all, ip)
	}
	slices.Sort(all)
	framework.WriteManifest(t, dir, "web.yaml", featuresWeb(all...))
	framework.WriteManifest(t, dir, "sticky.yaml", annotatedService("sticky", "10.96.0.11", "ipvs-proxy.io/scheduler: sh"))
	framework.WriteManifest(t, dir, "hashed.yaml", annotatedService("hashed", "10.96.0.12",
		`ipvs-proxy.io/scheduler: mh, ipvs-proxy.io/scheduler-flags: "mh-fallback,mh-port"`))
	framework.WriteManifest(t, dir, "typo.yaml", annotatedService("typo", "10.96.0.13", "ipvs-proxy.io/scheduler: lcx"))
	framework.WriteManifest(t, dir, "counted.yaml", annotatedService("counted", "10.96.0.14", ""))
}

// drainOne opens a connection to web's line port from client1 and removes
// the endpoint that answers it from web; it returns once that real server
// drains at weight 0 on the line port and is gone from the HTTP port (where
// it had no connection).
func drainOne(t *testing.T, dir string, n *featureNode) {
	t.Helper()
	conn, err := n.client1.OpenLine("10.96.0.10:9000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	holder, err := conn.Ask()
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for name, ip := range n.ips {
		if name != holder {
			keep = append(keep, ip)
		}
	}
	slices.Sort(keep)
	framework.WriteManifest(t, dir, "web.yaml", featuresWeb(keep...))
	ip := n.ips[holder]
	framework.Eventually(t, 15*time.Second, func() error {
		vss := framework.IPVSServices(t)
		if rs := framework.FindVirtualServer(vss, "TCP", "10.96.0.10:9000").RealServer(ip + ":9000"); rs == nil || rs.Weight != 0 {
			return fmt.Errorf("%s:9000 not draining yet:\n%s", ip, ipvsadmText(t))
		}
		if framework.FindVirtualServer(vss, "TCP", "10.96.0.10:80").RealServer(ip+":8080") != nil {
			return fmt.Errorf("%s:8080 (no connection) not deleted yet:\n%s", ip, ipvsadmText(t))
		}
		return nil
	})
	n.drained, n.conn = holder, conn
}

// checkAnnotations: `ipvs-proxy.io/scheduler: sh` shows as sh in ipvsadm
// -Ln and pins each of two clients to one backend; `mh` with
// `scheduler-flags: mh-fallback,mh-port` shows as `mh (mh-fallback,mh-port)`;
// Services without annotation keep the node's default (rr); a typo (`lcx`)
// keeps rr too, rotating over its backends, and `ipvs-proxy status` lists it
// under problems.
func checkAnnotations(t *testing.T, n *featureNode) {
	vss := framework.IPVSServices(t)
	for _, want := range []struct{ addr, sched, flags string }{
		{"10.96.0.10:80", "rr", ""}, {"10.96.0.14:80", "rr", ""}, {"10.96.0.11:80", "sh", ""},
		{"10.96.0.12:80", "mh", "mh-fallback,mh-port"}, {"10.96.0.13:80", "rr", ""},
	} {
		vs := framework.FindVirtualServer(vss, "TCP", want.addr)
		if vs == nil || vs.Scheduler != want.sched || vs.SchedFlags != want.flags {
			t.Errorf("want TCP %s %s (%s):\n%s", want.addr, want.sched, want.flags, ipvsadmText(t))
		}
	}
	for i, c := range []framework.Client{n.client1, n.client2} {
		seen := requests(t, c, framework.HTTP, "10.96.0.11:80", 10)
		t.Logf("sh, client %d: %s", i+1, seen)
		if seen.only() == "" {
			t.Errorf("sh: client %d reached %s, want one backend", i+1, seen)
		}
	}
	seen := requests(t, n.client1, framework.HTTP, "10.96.0.13:80", 6)
	t.Logf("rr (typo, the node default): %s", seen)
	if len(seen) != 3 || seen.only() != "" {
		t.Errorf("rr: 6 requests reached %s, want all three backends", seen)
	}
	out := framework.Run(t, os.Getenv(framework.EnvProxyBin), "status")
	_, problems, _ := strings.Cut(out, "not programmed as written:\n")
	if !strings.Contains(problems, `default/typo: Service default/typo: metadata.annotations[ipvs-proxy.io/scheduler]: unknown scheduler "lcx"`) {
		t.Errorf("ipvs-proxy status does not show the typo as a problem:\n%s", out)
	}
	t.Logf("ipvs-proxy status, problems:\n%s", problems)
}

// checkStatus: with web's drained real server, `ipvs-proxy status` (table)
// and `--output json` list every virtual server of ipvsadm -Ln with its
// Service port and type (ClusterIP, NodePort), scheduler and real servers
// with weight, state (ready, draining) and connections; `--service` shows
// one Service only.
func checkStatus(t *testing.T, n *featureNode) {
	bin := os.Getenv(framework.EnvProxyBin)
	drained := n.ips[n.drained]
	table := framework.Run(t, bin, "status")
	t.Logf("ipvs-proxy status:\n%s", table)
	var rep status.Report
	if err := json.Unmarshal([]byte(framework.Run(t, bin, "status", "--output", "json")), &rep); err != nil {
		t.Fatalf("ipvs-proxy status --output json: %v", err)
	}
	if rep.Node != framework.DefaultNodeName || !rep.Healthy {
		t.Errorf("status: node %q, healthy %v; want %s, healthy", rep.Node, rep.Healthy, framework.DefaultNodeName)
	}
	// Every virtual server of ipvsadm -Ln is in the report, with its Service
	// and type: web's node ports are on every node address.
	wantService := map[string]string{"10.96.0.11:80": "default/sticky", "10.96.0.12:80": "default/hashed", "10.96.0.13:80": "default/typo",
		"10.96.0.14:80": "default/counted"}
	for _, vs := range framework.IPVSServices(t) {
		got := findReported(rep, vs.Proto, vs.Addr)
		if got == nil {
			t.Errorf("status --output json lacks %s %s", vs.Proto, vs.Addr)
			continue
		}
		svc := wantService[vs.Addr]
		if svc == "" {
			svc = "default/web"
		}
		typ := "ClusterIP"
		if strings.HasSuffix(vs.Addr, ":30080") || strings.HasSuffix(vs.Addr, ":30090") {
			typ = "NodePort"
		}
		if got.Type != typ || got.Service != svc || got.Scheduler != vs.Scheduler || !got.InKernel {
			t.Errorf("status of %s %s: %s %s scheduler %s (in kernel %v); want %s %s scheduler %s",
				vs.Proto, vs.Addr, got.Type, got.Service, got.Scheduler, got.InKernel, typ, svc, vs.Scheduler)
		}
		if len(got.RealServers) != len(vs.RealServers) {
			t.Errorf("status of %s %s: %d real servers, ipvsadm shows %d", vs.Proto, vs.Addr, len(got.RealServers), len(vs.RealServers))
		}
	}
	// The line port's real servers: the removed endpoint draining at
	// weight 0 (holding the open connection through the cluster IP),
	// the others ready at weight 1.
	for _, addr := range []string{"10.96.0.10:9000", framework.NodeIP + ":30090"} {
		vs := findReported(rep, "TCP", addr)
		if vs == nil {
			continue
		}
		for _, rs := range vs.RealServers {
			weight, state := int32(1), status.StateReady
			if rs.Address == drained {
				weight, state = 0, status.StateDraining
			}
			if rs.Weight != weight || rs.State != state {
				t.Errorf("status of TCP %s: real server %s weight %d %s, want weight %d %s", addr, rs.Address, rs.Weight, rs.State, weight, state)
			}
			if rs.Address == drained && addr == "10.96.0.10:9000" && rs.ActiveConns != 1 {
				t.Errorf("status of TCP %s: draining real server %s has %d active connections, want 1", addr, rs.Address, rs.ActiveConns)
			}
		}
	}
	line := fmt.Sprintf("-> %s:9000 weight 0 draining active 1 inactive 0", drained)
	if !strings.Contains(strings.Join(strings.Fields(table), " "), line) {
		t.Errorf("ipvs-proxy status (table) lacks %q", line)
	}
	for _, want := range []string{"ClusterIP default/web:line TCP 10.96.0.10:9000 rr", "NodePort default/web:http TCP " + framework.NodeIP + ":30080 rr",
		"ClusterIP default/hashed:http TCP 10.96.0.12:80 mh (mh-fallback,mh-port)"} {
		if !strings.Contains(strings.Join(strings.Fields(table), " "), want) {
			t.Errorf("ipvs-proxy status (table) lacks %q", want)
		}
	}

	// --service: the table of one Service, without the others' problems
	// (each ipvs-proxy process costs seconds under emulation: one call).
	one := framework.Run(t, bin, "status", "--service", "default/sticky")
	var vsLines []string
	for _, l := range strings.Split(one, "\n") {
		if f := strings.Fields(l); len(f) > 0 && (f[0] == "ClusterIP" || f[0] == "NodePort") {
			vsLines = append(vsLines, strings.Join(f[:4], " "))
		}
	}
	if !slices.Equal(vsLines, []string{"ClusterIP default/sticky:http TCP 10.96.0.11:80"}) || strings.Contains(one, "not programmed as written") {
		t.Errorf("status --service default/sticky shows %q, want only sticky's virtual server and no problem:\n%s", vsLines, one)
	}
	if got, err := n.conn.Ask(); err != nil || got != n.drained {
		t.Errorf("the drained connection: %q, %v; want %s", got, err, n.drained)
	}
}

// checkMetrics: ipvsproxy_service_{connections,packets,bytes}_total of a
// Service port with no traffic yet (counted) are 0; after 20 requests,
// connections is 20 (once ipvsadm --stats counts them too) and packets and
// bytes both ways have grown accordingly (--traffic-metrics-period 1s).
func checkMetrics(t *testing.T, n *featureNode) {
	// counted has had no traffic yet: its counters start at 0.
	const count, vip = 20, "10.96.0.14:80"
	const labels = `namespace="default",port="http",service="counted"`
	series := []string{
		"ipvsproxy_service_connections_total{" + labels + "}",
		`ipvsproxy_service_packets_total{direction="in",` + labels + "}",
		`ipvsproxy_service_packets_total{direction="out",` + labels + "}",
		`ipvsproxy_service_bytes_total{direction="in",` + labels + "}",
		`ipvsproxy_service_bytes_total{direction="out",` + labels + "}",
	}
	before, err := framework.ScrapeMetrics(framework.MetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range series {
		if v, ok := before[s]; !ok || v != 0 {
			t.Errorf("before any traffic: %s = %v (present %v), want 0", s, v, ok)
		}
	}
	sent := time.Now()
	seen := requests(t, n.client1, framework.HTTP, vip, count)
	// The kernel refreshes its counters every 2 s, the daemon reads them
	// every second (--traffic-metrics-period 1s).
	var after framework.Metrics
	framework.Eventually(t, 15*time.Second, func() error {
		if conns := framework.IPVSTotalConns(t, "TCP", vip); conns < count {
			return fmt.Errorf("ipvsadm --stats counts %d connections so far", conns)
		}
		m, err := framework.ScrapeMetrics(framework.MetricsAddr)
		if err != nil {
			return err
		}
		if m[series[0]] < count {
			return fmt.Errorf("%s = %v so far", series[0], m[series[0]])
		}
		after = m
		return nil
	})
	var got []string
	for _, s := range series {
		got = append(got, fmt.Sprintf("%s %v", s, after[s]))
	}
	t.Logf("%d requests (%s); %.1fs later:\n  %s", count, seen, time.Since(sent).Seconds(), strings.Join(got, "\n  "))
	if after[series[0]] != count {
		t.Errorf("%s = %v after %d requests, want %d", series[0], after[series[0]], count, count)
	}
	for i, minPer := range map[int]float64{1: 3, 2: 2, 3: 60, 4: 60} {
		if after[series[i]] < minPer*count {
			t.Errorf("%s = %v, want at least %v for %d requests", series[i], after[series[i]], minPer*count, count)
		}
	}
}

// findReported returns the virtual server proto addr of a status report.
func findReported(r status.Report, proto, addr string) *status.VirtualServer {
	for i, vs := range r.VirtualServers {
		if vs.Protocol == proto && fmt.Sprintf("%s:%d", vs.Address, vs.Port) == addr {
			return &r.VirtualServers[i]
		}
	}
	return nil
}
