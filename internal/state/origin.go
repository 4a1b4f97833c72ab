package state

// Kind is the way a virtual server exposes a Service port.
type Kind string

// The kinds of virtual servers, as `ipvs-proxy status` shows them.
const (
	KindClusterIP    Kind = "ClusterIP"
	KindNodePort     Kind = "NodePort"
	KindExternalIP   Kind = "External"
	KindLoadBalancer Kind = "LoadBalancer"
	// KindInCluster is the firewall-mark virtual server that takes traffic
	// starting inside the cluster (pods, the node) to the external
	// addresses of an externalTrafficPolicy Local Service port.
	KindInCluster Kind = "InCluster"
)

// Origin names the Service port an object was computed from.
type Origin struct {
	// Service is "namespace/name".
	Service string
	// Port is the Service port's name, or its number when unnamed.
	Port string
	Kind Kind
}

// String renders "namespace/name:port".
func (o Origin) String() string { return o.Service + ":" + o.Port }
