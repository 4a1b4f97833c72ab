package proxier

import (
	"context"
	"time"

	"go.uber.org/zap"
	"k8s.io/utils/clock"
)

// Run is a timer loop around Step until ctx is done. Nothing is synced
// before the source has delivered its initial state and the node is known;
// then a full sync adopts the kernel's state, changes run partial steps
// (at most one per MinSyncPeriod), SyncPeriod runs full ones, a failed sync
// is retried with a backoff, each failing Service when its retry is due,
// and drained real servers are checked every DrainCheckPeriod. Between
// steps it answers View and SetConfig.
func (p *Proxier) Run(ctx context.Context) error {
	l := newLoop(p)
	defer l.stop()
	waitStart := p.clock.Now()
	if !l.waitSource(ctx) {
		return nil
	}
	p.sourceWait = p.clock.Since(waitStart)
	p.log.Info("source synced; starting with a full sync that adopts the kernel's state")
	l.start()
	l.minPeriod(ctx)
	l.done(FullSync, l.step(FullSync))
	for {
		kind, ok := l.next(ctx)
		if !ok {
			return nil
		}
		if kind == DrainSync {
			p.Step(DrainSync)
			continue
		}
		if !l.minPeriod(ctx) {
			return nil
		}
		l.done(kind, l.step(kind))
	}
}

// step runs one step, telling it the wait before its retry should it fail
// (for its sync event) unless a retry is already pending.
func (l *loop) step(kind SyncKind) SyncStats {
	if l.retryTimer == nil {
		l.p.retryAfter = l.retry
	}
	st := l.p.Step(kind)
	l.p.retryAfter = 0
	return st
}

// loop holds Run's timers; it decides when to step and of which kind.
type loop struct {
	p              *Proxier
	turn, drain    clock.Ticker
	full, services clock.Timer
	retryTimer     <-chan time.Time
	retry          time.Duration
	last           time.Time
}

func newLoop(p *Proxier) *loop {
	return &loop{p: p, turn: p.clock.NewTicker(p.cfg.TurnPeriod), retry: p.cfg.RetryMin}
}

func (l *loop) stop() {
	l.turn.Stop()
	if l.drain != nil {
		l.drain.Stop()
		l.full.Stop()
		l.services.Stop()
	}
}

// waitSource turns until the source has synced; false when ctx is done.
func (l *loop) waitSource(ctx context.Context) bool {
	p := l.p
	for !p.store.isSynced() {
		p.cfg.Health.Turned() // waiting for the source is not being stuck
		select {
		case <-ctx.Done():
			return false
		case <-p.store.notify:
		case <-l.turn.C():
		case reply := <-p.views:
			p.answerView(reply)
		case cfg := <-p.configs:
			p.takeConfig(cfg)
		}
	}
	return true
}

// start arms the timers.
func (l *loop) start() {
	c := l.p.clock
	l.full = c.NewTimer(l.p.cfg.Config.IPVS.SyncPeriod)
	l.drain = c.NewTicker(l.p.cfg.DrainCheckPeriod)
	l.services = c.NewTimer(time.Hour) // the next retry of a failing Service
	l.services.Stop()
}

// next waits for the next reason to step and says which kind; false when
// ctx is done.
func (l *loop) next(ctx context.Context) (SyncKind, bool) {
	p := l.p
	for {
		p.cfg.Health.Turned()
		select {
		case <-ctx.Done():
			return "", false
		case <-l.full.C():
			return FullSync, true
		case <-p.store.notify:
		case <-l.retryTimer:
			l.retryTimer = nil
		case <-l.services.C():
		case <-l.turn.C():
			continue
		case <-l.drain.C():
			return DrainSync, true
		case reply := <-p.views:
			p.answerView(reply)
			continue
		case cfg := <-p.configs:
			p.takeConfig(cfg) // needFull: the step runs as a full one
		}
		return PartialSync, true
	}
}

// minPeriod waits until MinSyncPeriod has passed since the last step;
// false when ctx is done.
func (l *loop) minPeriod(ctx context.Context) bool {
	c := l.p.clock
	if min := l.p.cfg.Config.IPVS.MinSyncPeriod; min > 0 && c.Since(l.last) < min {
		select {
		case <-ctx.Done():
			return false
		case <-c.After(min - c.Since(l.last)):
		}
	}
	l.last = c.Now()
	return true
}

// done arms the timers after a step: the next periodic full sync after a
// full one, a retry with backoff after a failed one, and the next retry of
// a failing Service.
func (l *loop) done(asked SyncKind, st SyncStats) {
	p := l.p
	switch {
	case st.Err == nil:
		l.retry = p.cfg.RetryMin
		if asked == FullSync || st.Type == FullSync {
			l.full.Reset(p.cfg.Config.IPVS.SyncPeriod)
		}
	case l.retryTimer == nil:
		p.log.Warn("sync failed; retrying", zap.Duration("after", l.retry))
		l.retryTimer = p.clock.After(l.retry)
		l.retry = min(2*l.retry, p.cfg.RetryMax)
	}
	l.services.Stop()
	if next := p.nextRetry(); !next.IsZero() {
		l.services.Reset(max(next.Sub(p.clock.Now()), 0))
	}
}
