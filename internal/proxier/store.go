package proxier

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
)

// NodeInfo is what the Node object says about this node.
type NodeInfo = desired.Node

// store is the snapshot of what the source has told us, and which Services
// changed since the last sync. Sources write it from their goroutines; the
// sync loop takes the changes.
type store struct {
	mu        sync.Mutex
	services  map[string]*v1.Service
	slices    map[string]*discovery.EndpointSlice // by slice namespace/name
	byService map[string]map[string]*discovery.EndpointSlice
	dirty     map[string]struct{}
	// triggered is the earliest change-trigger time per dirty Service, for the
	// network programming latency metric.
	triggered map[string]time.Time
	node      *NodeInfo
	nodeDirty bool
	// serviceCIDRs are handed to compute with the node (see NodeInfo).
	serviceCIDRs []netip.Prefix
	synced       bool
	svcN, epN    int // changes since the last take
	// first is when the oldest change since the last take arrived.
	first  time.Time
	notify chan struct{}
}

func newStore() *store {
	return &store{
		services: map[string]*v1.Service{}, slices: map[string]*discovery.EndpointSlice{},
		byService: map[string]map[string]*discovery.EndpointSlice{}, dirty: map[string]struct{}{},
		triggered: map[string]time.Time{}, notify: make(chan struct{}, 1),
	}
}

func (s *store) poke() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *store) markDirty(key string, at time.Time) {
	if s.first.IsZero() {
		s.first = time.Now()
	}
	s.dirty[key] = struct{}{}
	if t, ok := s.triggered[key]; !ok || (!at.IsZero() && at.Before(t)) {
		s.triggered[key] = at
	}
}

// UpsertService records a new or changed Service.
func (s *store) UpsertService(svc *v1.Service) {
	key := desired.ServiceKey(svc.Namespace, svc.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.services[key]; ok && equality.Semantic.DeepEqual(old.Spec, svc.Spec) &&
		equality.Semantic.DeepEqual(old.Status, svc.Status) && equality.Semantic.DeepEqual(old.Annotations, svc.Annotations) {
		return
	}
	s.services[key] = svc
	s.svcN++
	s.markDirty(key, time.Now())
	s.poke()
}

// DeleteService records that a Service is gone.
func (s *store) DeleteService(namespace, name string) {
	key := desired.ServiceKey(namespace, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.services[key]; !ok {
		return
	}
	delete(s.services, key)
	s.svcN++
	s.markDirty(key, time.Now())
	s.poke()
}

// UpsertSlice records a new or changed EndpointSlice.
func (s *store) UpsertSlice(es *discovery.EndpointSlice) {
	id := es.Namespace + "/" + es.Name
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.slices[id]
	if old != nil && equality.Semantic.DeepEqual(old.Endpoints, es.Endpoints) && equality.Semantic.DeepEqual(old.Ports, es.Ports) &&
		old.AddressType == es.AddressType && old.Labels[discovery.LabelServiceName] == es.Labels[discovery.LabelServiceName] {
		return
	}
	if old != nil {
		s.unindex(id, old)
	}
	s.slices[id] = es
	key, _ := desired.SliceServiceKey(es)
	if s.byService[key] == nil {
		s.byService[key] = map[string]*discovery.EndpointSlice{}
	}
	s.byService[key][id] = es
	s.epN++
	s.markDirty(key, triggerTime(es))
	s.poke()
}

// DeleteSlice records that an EndpointSlice is gone.
func (s *store) DeleteSlice(namespace, name string) {
	id := namespace + "/" + name
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.slices[id]
	if old == nil {
		return
	}
	s.unindex(id, old)
	delete(s.slices, id)
	s.epN++
	s.poke()
}

func (s *store) unindex(id string, es *discovery.EndpointSlice) {
	key, _ := desired.SliceServiceKey(es)
	delete(s.byService[key], id)
	if len(s.byService[key]) == 0 {
		delete(s.byService, key)
	}
	s.markDirty(key, time.Now())
}

// SetNode records the node's information; any change recomputes everything.
func (s *store) SetNode(n NodeInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.node != nil && equality.Semantic.DeepEqual(*s.node, n) {
		return
	}
	s.node = &n
	s.nodeDirty = true
	if s.first.IsZero() {
		s.first = time.Now()
	}
	s.poke()
}

// SetServiceCIDRs records the service CIDRs; any change recomputes everything.
func (s *store) SetServiceCIDRs(cidrs []netip.Prefix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Equal(s.serviceCIDRs, cidrs) {
		return
	}
	s.serviceCIDRs = slices.Clone(cidrs)
	s.nodeDirty = true
	if s.first.IsZero() {
		s.first = time.Now()
	}
	s.poke()
}

// SetSynced records that the source has delivered its initial state.
func (s *store) SetSynced() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.synced = true
	s.poke()
}

// changes is what a sync takes from the store.
type changes struct {
	dirty     map[string]struct{}
	triggered map[string]time.Time
	nodeDirty bool
	node      NodeInfo
	svcN, epN int
	// first is when the source delivered the oldest of these changes (zero: none).
	first time.Time
}

// take returns and clears the pending changes.
func (s *store) take() changes {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := changes{dirty: s.dirty, triggered: s.triggered, nodeDirty: s.nodeDirty, svcN: s.svcN, epN: s.epN, first: s.first}
	if s.node != nil {
		c.node = *s.node
		c.node.ServiceCIDRs = s.serviceCIDRs
	}
	s.dirty, s.triggered, s.nodeDirty, s.svcN, s.epN = map[string]struct{}{}, map[string]time.Time{}, false, 0, 0
	s.first = time.Time{}
	return c
}

// requeue puts back the changes taken by a sync that could not run; the
// retry of that sync takes them again (with any that arrived meanwhile).
func (s *store) requeue(c changes) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range c.dirty {
		s.dirty[k] = struct{}{}
	}
	for k, t := range c.triggered {
		if old, ok := s.triggered[k]; !ok || t.Before(old) {
			s.triggered[k] = t
		}
	}
	s.nodeDirty = s.nodeDirty || c.nodeDirty
	s.svcN += c.svcN
	s.epN += c.epN
	if !c.first.IsZero() && (s.first.IsZero() || c.first.Before(s.first)) {
		s.first = c.first
	}
}

// pending reports the numbers of changes not yet taken.
func (s *store) pending() (svc, ep int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.svcN, s.epN
}

// service returns a Service and its EndpointSlices (nil if the Service is gone).
func (s *store) service(key string) (*v1.Service, []*discovery.EndpointSlice) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc := s.services[key]
	if svc == nil {
		return nil, nil
	}
	var out []*discovery.EndpointSlice
	for _, es := range s.byService[key] {
		out = append(out, es)
	}
	return svc, out
}

// keys returns every Service key.
func (s *store) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.services))
	for k := range s.services {
		out = append(out, k)
	}
	return out
}

func (s *store) isSynced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced && s.node != nil
}

// triggerTime reads the EndpointSlice's last-change-trigger-time annotation.
func triggerTime(es *discovery.EndpointSlice) time.Time {
	if v := es.Annotations[v1.EndpointsLastChangeTriggerTime]; v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t
		}
	}
	return time.Now()
}
