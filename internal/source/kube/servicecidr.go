package kube

import (
	"slices"

	"go.uber.org/zap"
	networking "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/source"
)

// serviceCIDRs returns an informer on the cluster's ServiceCIDR objects
// (networking.k8s.io/v1, GA in Kubernetes 1.33) that tells sink their CIDRs
// whenever they change, or nil when the API server does not serve them: the
// traffic to unallocated ClusterIPs is then not dropped, as with kube-proxy
// on such a cluster. It must be called before the factory starts.
func (s *Source) serviceCIDRs(sink source.Sink) cache.SharedIndexInformer {
	list, err := s.client.Discovery().ServerResourcesForGroupVersion(networking.SchemeGroupVersion.String())
	if err != nil || !slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == "servicecidrs" }) {
		s.cfg.Log.Info("the API server has no ServiceCIDRs (networking.k8s.io/v1): traffic to unallocated ClusterIPs is not dropped", zap.Error(err))
		return nil
	}
	inf := s.factory.Networking().V1().ServiceCIDRs().Informer()
	tell := func() {
		var objs []*networking.ServiceCIDR
		for _, o := range inf.GetStore().List() {
			if sc, ok := o.(*networking.ServiceCIDR); ok {
				objs = append(objs, sc)
			}
		}
		cidrs, errs := desired.ServiceCIDRs(objs)
		for _, e := range errs {
			s.cfg.Log.Warn("invalid object", zap.Error(e))
		}
		sink.SetServiceCIDRs(cidrs)
	}
	_, _ = inf.AddEventHandler(handler(func(*networking.ServiceCIDR) { tell() }, func(*networking.ServiceCIDR) { tell() }))
	return inf
}
