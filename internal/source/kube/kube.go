// Package kube feeds the proxier from an API server through client-go shared
// informers: Services and EndpointSlices (minus those another proxy handles
// and headless ones, filtered by label selector at the server so they are
// never cached), this node's Node object and, where the API server has them,
// the ServiceCIDRs.
package kube

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"go.uber.org/zap"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/source"
)

// Labels kube-proxy honours on Services (and their EndpointSlices).
const (
	LabelServiceProxyName = "service.kubernetes.io/service-proxy-name"
	LabelHeadless         = v1.IsHeadlessService // service.kubernetes.io/headless
)

// Config configures the API server source.
type Config struct {
	// Kubeconfig and Master locate the API server; both empty means in-cluster.
	Kubeconfig, Master string
	QPS                float32
	Burst              int32
	ContentType        string
	AcceptContentTypes string
	NodeName           string
	// ResyncPeriod is the informers' resync (configSyncPeriod).
	ResyncPeriod time.Duration
	// NodeWait bounds how long to wait for the Node object before starting without it (default 30 s).
	NodeWait time.Duration
	// ProbePeriod is how often the API server's /readyz is asked, to tell
	// Health whether the source is stale (default 5 s).
	ProbePeriod time.Duration
	Log         *zap.Logger
	Health      source.Health
}

// Source watches an API server.
type Source struct {
	cfg                  Config
	client               kubernetes.Interface
	factory, nodeFactory informers.SharedInformerFactory
	services, slices     cache.SharedIndexInformer
	nodes                cache.SharedIndexInformer
}

// RESTConfig builds the client configuration: kubeconfig/master, or in-cluster.
func RESTConfig(kubeconfig, master string) (*rest.Config, error) {
	if kubeconfig == "" && master == "" {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no --kubeconfig or --master and not running in a cluster: %w", err)
		}
		return c, nil
	}
	c, err := clientcmd.BuildConfigFromFlags(master, kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %q: %w", kubeconfig, err)
	}
	return c, nil
}

// New returns a Source over a client built from cfg; it does no I/O until Run.
func New(cfg Config) (*Source, error) {
	rc, err := RESTConfig(cfg.Kubeconfig, cfg.Master)
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst, rc.ContentType, rc.AcceptContentTypes = cfg.QPS, int(cfg.Burst), cfg.ContentType, cfg.AcceptContentTypes
	rc.UserAgent = "ipvs-proxy"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return NewWithClient(cfg, client), nil
}

// NewWithClient returns a Source over an existing client.
func NewWithClient(cfg Config, client kubernetes.Interface) *Source {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.NodeWait == 0 {
		cfg.NodeWait = 30 * time.Second
	}
	if cfg.ProbePeriod == 0 {
		cfg.ProbePeriod = 5 * time.Second
	}
	s := &Source{cfg: cfg, client: client}
	sel := ProxyLabelSelector()
	s.factory = informers.NewSharedInformerFactoryWithOptions(client, cfg.ResyncPeriod, informers.WithTransform(stripUnused),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = sel }))
	s.nodeFactory = informers.NewSharedInformerFactoryWithOptions(client, cfg.ResyncPeriod, informers.WithTransform(stripUnused),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", cfg.NodeName).String()
		}))
	s.services = s.factory.Core().V1().Services().Informer()
	s.slices = s.factory.Discovery().V1().EndpointSlices().Informer()
	s.nodes = s.nodeFactory.Core().V1().Nodes().Informer()
	return s
}

// Reporter returns a reporter that turns a Service's errors into Warning Events.
func (s *Source) Reporter() *Events {
	return NewEvents(s.client, s.cfg.NodeName, s.service, s.cfg.Log.Named("events"))
}

// service looks a Service up in the informer's cache.
func (s *Source) service(namespace, name string) *v1.Service {
	obj, ok, err := s.services.GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil
	}
	svc, _ := obj.(*v1.Service)
	return svc
}

// ProxyLabelSelector selects the Services (and EndpointSlices) this proxy
// handles: not claimed by another proxy, not headless.
func ProxyLabelSelector() string {
	noProxy, _ := labels.NewRequirement(LabelServiceProxyName, selection.DoesNotExist, nil)
	noHeadless, _ := labels.NewRequirement(LabelHeadless, selection.DoesNotExist, nil)
	return labels.NewSelector().Add(*noProxy, *noHeadless).String()
}

// Run feeds sink until ctx is done. SetSynced is called once every informer
// has synced and the Node is known (or NodeWait has passed).
func (s *Source) Run(ctx context.Context, sink source.Sink) error {
	svcInf, esInf, nodeInf := s.services, s.slices, s.nodes
	factory, nodeFactory := s.factory, s.nodeFactory

	nodeSeen := make(chan struct{}, 1)
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{svcInf, handler(func(o *v1.Service) { sink.UpsertService(o) }, func(o *v1.Service) { sink.DeleteService(o.Namespace, o.Name) })},
		{esInf, handler(func(o *discovery.EndpointSlice) { sink.UpsertSlice(o) }, func(o *discovery.EndpointSlice) { sink.DeleteSlice(o.Namespace, o.Name) })},
		{nodeInf, handler(func(o *v1.Node) {
			s.eligibility(Eligibility(o))
			sink.SetNode(NodeInfo(o))
			select {
			case nodeSeen <- struct{}{}:
			default:
			}
		}, func(o *v1.Node) {
			s.cfg.Log.Warn("this node's Node object was deleted; keeping its last known state", zap.String("node", o.Name))
			s.eligibility(false, "the Node object was deleted")
		})},
	}
	synced := []cache.InformerSynced{svcInf.HasSynced, esInf.HasSynced, nodeInf.HasSynced}
	if cidrInf := s.serviceCIDRs(sink); cidrInf != nil {
		synced = append(synced, cidrInf.HasSynced)
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return err
		}
		_ = h.inf.SetWatchErrorHandler(func(r *cache.Reflector, err error) {
			s.cfg.Log.Warn("API server watch failed; keeping the current state", zap.Error(err))
			if s.cfg.Health != nil {
				s.cfg.Health.SourceStale(true)
			}
		})
	}
	factory.Start(ctx.Done())
	nodeFactory.Start(ctx.Done())
	defer factory.Shutdown()
	defer nodeFactory.Shutdown()
	s.cfg.Log.Info("waiting for informers to sync", zap.String("labelSelector", ProxyLabelSelector()))
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil // ctx done
	}
	select {
	case <-nodeSeen:
		nodeSeen <- struct{}{}
	case <-time.After(s.cfg.NodeWait):
		s.cfg.Log.Warn("Node object not found; NodePorts use the host's addresses and topology hints are ignored", zap.String("node", s.cfg.NodeName))
		sink.SetNode(desired.Node{Name: s.cfg.NodeName})
	case <-ctx.Done():
		return nil
	}
	sink.SetSynced()
	s.cfg.Log.Info("informers synced")
	go s.watchStaleness(ctx, svcInf, esInf)
	<-ctx.Done()
	return nil
}

// watchStaleness asks the API server every ProbePeriod whether it answers,
// and marks the source stale while it does not. Watch errors mark it stale
// too, but a network that silently drops packets gives none for a long time:
// client-go notices a dead connection only through its HTTP/2 health check
// (30 s without a frame, then a 15 s ping timeout). The mark is cleared once
// the API server answers and the informers have synced.
func (s *Source) watchStaleness(ctx context.Context, infs ...cache.SharedIndexInformer) {
	if s.cfg.Health == nil {
		return
	}
	t := time.NewTicker(s.cfg.ProbePeriod)
	defer t.Stop()
	answering := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.probe(ctx)
		switch {
		case err != nil:
			if answering {
				s.cfg.Log.Warn("API server not answering; keeping the current state", zap.Error(err))
				answering = false
			}
			s.cfg.Health.SourceStale(true)
			continue
		case !answering:
			s.cfg.Log.Info("API server answering again")
			answering = true
		}
		synced := true
		for _, inf := range infs {
			synced = synced && inf.HasSynced() && !inf.IsStopped()
		}
		if synced {
			s.cfg.Health.SourceStale(false)
		}
	}
}

// probe asks the API server's /readyz (cheap, and proves the connection the
// informers use works), within half the probe period.
func (s *Source) probe(ctx context.Context) error {
	rc := s.client.Discovery().RESTClient()
	if rc == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.ProbePeriod/2)
	defer cancel()
	return rc.Get().AbsPath("/readyz").Do(cctx).Error()
}

// NodeInfo extracts what compute needs from a Node object.
func NodeInfo(n *v1.Node) desired.Node {
	out := desired.Node{Name: n.Name, Labels: n.Labels}
	// InternalIPs first, then ExternalIPs, as kube-proxy orders them when it
	// picks the node's primary address of each family (GetNodeHostIPs).
	for _, typ := range []v1.NodeAddressType{v1.NodeInternalIP, v1.NodeExternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type != typ {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				out.PrimaryAddresses = append(out.PrimaryAddresses, ip.Unmap())
			}
		}
	}
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			out.PodCIDRs = append(out.PodCIDRs, p.Masked())
		}
	}
	return out
}

// handler adapts typed callbacks to informer events, including deletions
// seen only as tombstones.
func handler[T any](upsert, del func(*T)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { call(obj, upsert) },
		UpdateFunc: func(_, obj any) { call(obj, upsert) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			call(obj, del)
		},
	}
}

func call[T any](obj any, f func(*T)) {
	if o, ok := obj.(*T); ok {
		f(o)
	}
}
