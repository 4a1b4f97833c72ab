// Package fake has in-memory kernel implementations as strict as the kernel:
// adding what exists fails with EEXIST, deleting what is missing fails with
// ENOENT or ESRCH, a real server needs its virtual server, a set in use by a
// rule cannot be destroyed. Each counts its writes and can dump itself in the
// syntax of the matching tool, for golden comparisons. Package fault wraps
// them (or real implementations) to inject failures.
package fake

import (
	"bytes"
	"sync"
	"syscall"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// IPVS is an in-memory IPVS table.
type IPVS struct {
	mu       sync.Mutex
	services map[state.VSKey]*state.Service
	timeouts state.Timeouts
	// Schedulers the "kernel" has modules for; nil means all.
	Schedulers map[string]bool
	stats      map[state.VSKey]state.Stats
	writes     int
	reads      int
}

var _ kernel.IPVS = (*IPVS)(nil)

// NewIPVS returns an empty table.
func NewIPVS() *IPVS { return &IPVS{services: map[state.VSKey]*state.Service{}} }

// SetSchedulers says which schedulers the "kernel" has modules for (none
// given: all), as loading or removing a module would.
func (f *IPVS) SetSchedulers(names ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(names) == 0 {
		f.Schedulers = nil
		return
	}
	f.Schedulers = map[string]bool{}
	for _, n := range names {
		f.Schedulers[n] = true
	}
}

// Dump implements kernel.IPVS.
func (f *IPVS) Dump() (map[state.VSKey]*state.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	out := make(map[state.VSKey]*state.Service, len(f.services))
	for k, s := range f.services {
		out[k] = s.Clone()
	}
	return out, nil
}

// DumpDestinations implements kernel.IPVS.
func (f *IPVS) DumpDestinations(keys []state.VSKey) (map[state.VSKey]map[state.RSKey]state.RealServer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	out := map[state.VSKey]map[state.RSKey]state.RealServer{}
	for _, k := range keys {
		if s := f.services[k]; s != nil {
			out[k] = s.Clone().RealServers
		}
	}
	return out, nil
}

// Exec implements kernel.IPVS.
func (f *IPVS) Exec(ops []kernel.IPVSOp) []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	errs := make([]error, len(ops))
	for i, op := range ops {
		f.writes++
		errs[i] = f.exec(op)
	}
	return errs
}

func (f *IPVS) exec(op kernel.IPVSOp) error {
	k := op.VS.Key
	svc := f.services[k]
	switch op.Cmd {
	case kernel.AddService, kernel.EditService:
		if f.Schedulers != nil && !f.Schedulers[op.VS.Scheduler] {
			return syscall.ENOENT
		}
		if op.Cmd == kernel.AddService {
			if svc != nil {
				return syscall.EEXIST
			}
			vs := op.VS
			vs.Origin = state.Origin{}
			f.services[k] = &state.Service{VirtualServer: vs, RealServers: map[state.RSKey]state.RealServer{}}
			return nil
		}
		if svc == nil {
			return syscall.ESRCH
		}
		svc.VirtualServer = op.VS
		svc.Origin = state.Origin{}
	case kernel.DelService:
		if svc == nil {
			return syscall.ESRCH
		}
		delete(f.services, k)
	case kernel.AddDest, kernel.EditDest, kernel.DelDest:
		if svc == nil {
			return syscall.ESRCH
		}
		old, exists := svc.RealServers[op.RS.Key]
		switch {
		case op.Cmd == kernel.AddDest && exists:
			return syscall.EEXIST
		case op.Cmd != kernel.AddDest && !exists:
			return syscall.ENOENT
		case op.Cmd == kernel.DelDest:
			delete(svc.RealServers, op.RS.Key)
		default:
			rs := op.RS
			rs.ActiveConns, rs.InactiveConns, rs.Terminating = old.ActiveConns, old.InactiveConns, false
			svc.RealServers[rs.Key] = rs
		}
	default:
		return syscall.EINVAL
	}
	return nil
}

// Timeouts implements kernel.IPVS.
func (f *IPVS) Timeouts() (state.Timeouts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.timeouts, nil
}

// SetTimeouts implements kernel.IPVS.
func (f *IPVS) SetTimeouts(t state.Timeouts) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if t.TCP > 0 {
		f.timeouts.TCP = t.TCP
	}
	if t.TCPFin > 0 {
		f.timeouts.TCPFin = t.TCPFin
	}
	if t.UDP > 0 {
		f.timeouts.UDP = t.UDP
	}
	return nil
}

// SetConns sets a real server's connection counts, as traffic would.
func (f *IPVS) SetConns(vs state.VSKey, rs state.RSKey, active, inactive uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if svc := f.services[vs]; svc != nil {
		if r, ok := svc.RealServers[rs]; ok {
			r.ActiveConns, r.InactiveConns = active, inactive
			svc.RealServers[rs] = r
		}
	}
}

// Save renders the table in `ipvsadm -Sn` syntax.
func (f *IPVS) Save() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := state.New()
	s.Services = f.services
	var b bytes.Buffer
	_ = s.WriteIPVS(&b)
	return b.String()
}

// Writes returns how many write operations were executed.
func (f *IPVS) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// ServiceStats returns the counters set with SetStats.
func (f *IPVS) ServiceStats() (map[state.VSKey]state.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[state.VSKey]state.Stats{}
	for k := range f.services {
		out[k] = f.stats[k]
	}
	return out, nil
}

// SetStats sets a virtual server's counters, as traffic would.
func (f *IPVS) SetStats(k state.VSKey, s state.Stats) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stats == nil {
		f.stats = map[state.VSKey]state.Stats{}
	}
	f.stats[k] = s
}
