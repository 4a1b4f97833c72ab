package status

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

var update = flag.Bool("update", false, "rewrite golden files")

func webSlice(ips ...string) *discovery.EndpointSlice {
	es := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-1", Labels: map[string]string{discovery.LabelServiceName: "web"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(v1.ProtocolTCP)}},
	}
	for _, ip := range ips {
		es.Endpoints = append(es.Endpoints, discovery.Endpoint{Addresses: []string{ip}})
	}
	return es
}

// running starts a proxier over a fake kernel with a NodePort Service web
// (ClientIP affinity, scheduler from an annotation) and a Service with a typo
// in its scheduler annotation; it waits for the first sync.
func running(t *testing.T) (*proxier.Proxier, *fake.Kernel) {
	fk := fake.New(netip.MustParseAddr("10.0.0.1"))
	synced := make(chan proxier.SyncStats, 100)
	p := proxier.New(proxier.Config{Kernel: fk.Interfaces(), Config: config.Default(), DrainCheckPeriod: time.Hour,
		OnSync: func(s proxier.SyncStats) { synced <- s }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	web := &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", Annotations: map[string]string{desired.AnnotationScheduler: "lc"}},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeNodePort, ClusterIP: "10.96.0.10", SessionAffinity: v1.ServiceAffinityClientIP,
			Ports: []v1.ServicePort{{Name: "http", Port: 80, NodePort: 30080, Protocol: v1.ProtocolTCP}}}}
	typo := &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "typo", Annotations: map[string]string{desired.AnnotationScheduler: "lcc"}},
		Spec: v1.ServiceSpec{ClusterIP: "10.96.0.11", Ports: []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}}}}
	p.UpsertService(web)
	p.UpsertService(typo)
	p.UpsertSlice(webSlice("10.244.1.1", "10.244.1.2"))
	p.SetNode(desired.Node{Name: "node-1"})
	p.SetSynced()
	waitSync(t, synced, "full")
	// an endpoint goes away while it still has a connection: drained
	vip := state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr("10.96.0.10"), Port: 80}
	fk.IPVS.SetConns(vip, state.RSKey{Addr: netip.MustParseAddr("10.244.1.2"), Port: 8080}, 1, 2)
	fk.IPVS.SetStats(vip, state.Stats{Conns: 7, InPackets: 70, OutPackets: 60, InBytes: 7000, OutBytes: 6000})
	fk.IPVS.SetStats(state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 30080}, state.Stats{Conns: 3, InPackets: 30, OutPackets: 20, InBytes: 3000, OutBytes: 2000})
	p.UpsertSlice(webSlice("10.244.1.1"))
	waitSync(t, synced, "partial")
	return p, fk
}

func waitSync(t *testing.T, c chan proxier.SyncStats, typ string) {
	t.Helper()
	for {
		select {
		case s := <-c:
			if string(s.Type) == typ && (typ != "partial" || s.Services > 0) {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s sync", typ)
		}
	}
}

func TestStatusReport(t *testing.T) {
	p, fk := running(t)
	srv := httptest.NewServer(Handler("node-1", p, fk.IPVS))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rep.LastSync = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var table bytes.Buffer
	if err := WriteTable(&table, &rep, rep.LastSync.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/report.golden", table.String())

	// one Service only: the kernel is read for it alone
	resp, err = srv.Client().Get(srv.URL + "?service=default/typo")
	if err != nil {
		t.Fatal(err)
	}
	var one Report
	_ = json.NewDecoder(resp.Body).Decode(&one)
	resp.Body.Close()
	if len(one.VirtualServers) != 1 || one.VirtualServers[0].Service != "default/typo" || len(one.Problems) != 1 {
		t.Fatalf("filtered report: %+v", one)
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("differs from %s (go test -update to accept):\n%s", path, got)
	}
}

func TestTrafficPerServicePort(t *testing.T) {
	p, fk := running(t)
	tr := NewTraffic(fk.IPVS.ServiceStats, p.Origins(), time.Hour, zap.NewNop())
	tr.Refresh()
	reg := prometheus.NewRegistry()
	reg.MustRegister(tr)
	want := `
# HELP ipvsproxy_service_connections_total Connections IPVS scheduled for a Service port, over all its virtual servers (ClusterIP, NodePorts, external and load balancer IPs).
# TYPE ipvsproxy_service_connections_total counter
ipvsproxy_service_connections_total{namespace="default",port="http",service="typo"} 0
ipvsproxy_service_connections_total{namespace="default",port="http",service="web"} 10
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ipvsproxy_service_connections_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(tr, "ipvsproxy_service_bytes_total"); n != 4 {
		t.Errorf("%d byte series, want 4 (2 Service ports × in/out)", n)
	}
}
