// Package source defines what a source of Services and EndpointSlices feeds:
// the proxier. Implementations: standalone (a manifest directory) and kube
// (an API server).
package source

import (
	"net/netip"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
)

// Sink receives the cluster as this node sees it.
type Sink interface {
	UpsertService(*v1.Service)
	DeleteService(namespace, name string)
	UpsertSlice(*discovery.EndpointSlice)
	DeleteSlice(namespace, name string)
	SetNode(desired.Node)
	// SetServiceCIDRs gives the CIDRs of the cluster's ServiceCIDR objects
	// (all of them, each time they change; see desired.ServiceCIDRs).
	SetServiceCIDRs([]netip.Prefix)
	// SetSynced says the initial state has been delivered.
	SetSynced()
}

// Health hears whether the source can be read.
type Health interface {
	SourceStale(stale bool)
}
