package proxier

import (
	"context"

	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
)

// SetConfig hands a running proxier a new configuration (a changed config
// file). The sync loop takes it between two syncs and runs a full sync with
// it at once: every Service is recomputed and what differs is edited in
// place, exactly what a restart onto the same kernel would plan (edit-vs for
// a scheduler, set-timeout, sysctls, the iptables rules, excludeCIDRs), with
// no flush and no restart. Fields that need a restart are the caller's
// business (config.NeedRestart). SetConfig waits until the loop has taken
// the config or ctx is done.
func (p *Proxier) SetConfig(ctx context.Context, cfg *config.Config) error {
	select {
	case p.configs <- cfg:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// takeConfig switches to cfg; it runs on the sync loop.
func (p *Proxier) takeConfig(cfg *config.Config) {
	p.cfg.Config = cfg
	p.cfg.Health.SetTimeout(2 * cfg.IPVS.SyncPeriod)
	p.needFull = true
	p.log.Info("configuration changed: a full sync applies it", zap.String("scheduler", cfg.IPVS.Scheduler),
		zap.Duration("syncPeriod", cfg.IPVS.SyncPeriod), zap.Duration("minSyncPeriod", cfg.IPVS.MinSyncPeriod))
}
