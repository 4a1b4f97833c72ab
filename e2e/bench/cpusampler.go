package main

import (
	"sync"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// cpuSampler reads a process's CPU times every cpuSampleEvery, so that the
// CPU of a sync can be told from what the daemon does while it waits for
// one: the CPU between two instants is the difference of the samples
// nearest to them.
type cpuSampler struct {
	mu      sync.Mutex
	at      []time.Time
	cpu     []framework.CPUTimes
	stopped chan struct{}
	done    chan struct{}
}

const cpuSampleEvery = 100 * time.Millisecond

func sampleCPU(p *framework.Process) *cpuSampler {
	s := &cpuSampler{stopped: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(cpuSampleEvery)
		defer t.Stop()
		for {
			if c, err := p.CPU(); err == nil {
				s.mu.Lock()
				s.at, s.cpu = append(s.at, time.Now()), append(s.cpu, c)
				s.mu.Unlock()
			}
			select {
			case <-s.stopped:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends the sampling.
func (s *cpuSampler) stop() {
	close(s.stopped)
	<-s.done
}

// between returns the CPU used from the last sample at or before from to
// the first at or after to (so at most a sample period too much each side).
func (s *cpuSampler) between(from, to time.Time) framework.CPUTimes {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, j := -1, -1
	for k, t := range s.at {
		if !t.After(from) {
			i = k
		}
		if j < 0 && !t.Before(to) {
			j = k
		}
	}
	if i < 0 || j < 0 {
		return framework.CPUTimes{}
	}
	return s.cpu[j].Sub(s.cpu[i])
}
