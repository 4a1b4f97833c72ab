package cli

import (
	"context"

	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/source"
	"github.com/ipvs-proxy/ipvs-proxy/internal/source/kube"
)

// runner is a source that feeds a sink until its context ends.
type runner interface {
	Run(ctx context.Context, sink source.Sink) error
}

// newKubeSource builds the API server source from the config.
func newKubeSource(cfg *config.Config, nodeName string, health source.Health, log *zap.Logger) (*kube.Source, error) {
	return kube.New(kube.Config{
		Kubeconfig: cfg.Kubeconfig, Master: cfg.Master, QPS: cfg.QPS, Burst: cfg.Burst, ContentType: cfg.ContentType,
		AcceptContentTypes: cfg.AcceptContentTypes,
		NodeName:           nodeName, ResyncPeriod: cfg.ConfigSyncPeriod, Log: log.Named("kube"), Health: health,
	})
}
