package proxier

import (
	"context"
	"sync"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/health"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// View is a copy of what the proxier wants, for status reports.
type View struct {
	// Services are the wanted virtual servers with their real servers
	// (RealServer.Terminating marks kube-proxy's terminating fallback).
	Services map[state.VSKey]*state.Service
	// Errors are the Services that could not be programmed as written.
	Errors map[string][]string
	// Draining are virtual servers holding removed real servers at weight 0.
	Draining map[state.VSKey]bool
	Health   health.Status
	Taken    time.Time
}

// View asks the sync loop, between two syncs, for a copy of the wanted state.
// It costs one pass over every Service, so it is for status requests, not
// for anything periodic.
func (p *Proxier) View(ctx context.Context) (*View, error) {
	reply := make(chan *View, 1)
	select {
	case p.views <- reply:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case v := <-reply:
		return v, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// answerView builds a View; it runs on the sync loop.
func (p *Proxier) answerView(reply chan<- *View) {
	v := &View{Services: map[state.VSKey]*state.Service{}, Errors: map[string][]string{}, Draining: map[state.VSKey]bool{},
		Health: p.cfg.Health.Status(), Taken: time.Now()}
	if p.index != nil {
		for k, s := range p.index.State().Services {
			v.Services[k] = s
		}
	}
	for svc, errs := range p.errs {
		for _, e := range errs {
			v.Errors[svc] = append(v.Errors[svc], e.Error())
		}
	}
	for k := range p.draining {
		v.Draining[k] = true
	}
	reply <- v
}

// Origins maps virtual servers to the Service ports they belong to. The
// proxier keeps it current at the cost of each change; readers (the traffic
// metrics) may use it from any goroutine.
type Origins struct {
	mu sync.RWMutex
	m  map[state.VSKey]state.Origin
}

// Get returns the Service port of a virtual server.
func (o *Origins) Get(k state.VSKey) (state.Origin, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	v, ok := o.m[k]
	return v, ok
}

// update sets the origins of the touched virtual servers from the index.
func (o *Origins) update(x *desired.Index, keys map[state.VSKey]struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[state.VSKey]state.Origin{}
	}
	for k := range keys {
		if s, ok := x.Wanted(k); ok {
			o.m[k] = s.Origin
		} else {
			delete(o.m, k)
		}
	}
}

// reset empties the map (before a full recompute).
func (o *Origins) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.m = map[state.VSKey]state.Origin{}
}
