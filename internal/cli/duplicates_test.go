package cli

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/manifest"
	"github.com/ipvs-proxy/ipvs-proxy/internal/source/standalone"
)

type (
	v1Service = v1.Service
	v1Slice   = discovery.EndpointSlice
)

// collector is a sink that keeps what a source says, like the proxier's store.
type collector struct {
	mu       sync.Mutex
	services map[string]*v1.Service
	slices   map[string]*discovery.EndpointSlice
	synced   chan struct{}
}

func (c *collector) UpsertService(s *v1.Service) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.services[s.Namespace+"/"+s.Name] = s
}
func (c *collector) DeleteService(ns, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.services, ns+"/"+name)
}
func (c *collector) UpsertSlice(es *discovery.EndpointSlice) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slices[es.Namespace+"/"+es.Name] = es
}
func (c *collector) DeleteSlice(ns, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.slices, ns+"/"+name)
}
func (c *collector) SetNode(desired.Node)           {}
func (c *collector) SetServiceCIDRs([]netip.Prefix) {}
func (c *collector) SetSynced()                     { close(c.synced) }

// Services and EndpointSlices defined more than once, across files and in one
// file: `plan` and the daemon's source pick the same definitions, so what
// plan prints is what the daemon programs.
func TestPlanAndDaemonPickTheSameDuplicate(t *testing.T) {
	dir := t.TempDir()
	svc := func(ip string) string {
		return "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec: {clusterIP: " + ip + ", ports: [{name: http, port: 80}]}\n---\n"
	}
	slice := func(ep string) string {
		return "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints: [{addresses: [" + ep + "]}]\n---\n"
	}
	for name, text := range map[string]string{
		"b.yaml":     svc("10.96.0.2") + slice("10.244.0.2") + svc("10.96.0.3"),
		"a.yaml":     slice("10.244.0.1") + slice("10.244.0.9"),
		"sub/c.yaml": svc("10.96.0.4") + slice("10.244.0.4"),
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	node := desired.Node{Name: "node1", Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}
	objs, err := manifest.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var fromPlan bytes.Buffer
	WritePlan(&fromPlan, config.Default(), node, objs)

	c := &collector{services: map[string]*v1.Service{}, slices: map[string]*discovery.EndpointSlice{}, synced: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- standalone.New(standalone.Config{Dir: dir, Poll: time.Hour}).Run(ctx, c) }()
	<-c.synced
	cancel()
	<-done
	var svcs []*v1.Service
	var slices []*discovery.EndpointSlice
	for _, s := range c.services {
		svcs = append(svcs, s)
	}
	for _, es := range c.slices {
		slices = append(slices, es)
	}
	var fromDaemon bytes.Buffer
	WritePlan(&fromDaemon, config.Default(), node, &manifest.Objects{Services: svcs, EndpointSlices: slices})
	if fromPlan.String() != fromDaemon.String() {
		t.Errorf("plan:\n%s\nthe daemon's source:\n%s", fromPlan.String(), fromDaemon.String())
	}
	if want := "-a -t 10.96.0.2:80 -r 10.244.0.1:8080 -m -w 1"; !bytes.Contains(fromPlan.Bytes(), []byte(want)) {
		t.Errorf("plan does not hold %q (the first Service, in b.yaml; the first slice, in a.yaml):\n%s", want, fromPlan.String())
	}
}
