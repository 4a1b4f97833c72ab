package kube

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/cache"
)

// lastApplied is kubectl's copy of the whole object as last applied.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// stripUnused is the informers' transform: it drops what ipvs-proxy never
// reads before an object enters the cache, the managed fields and kubectl's
// last-applied copy, which are often most of a Service's or an
// EndpointSlice's size. Every other field and annotation stays.
var stripUnused cache.TransformFunc = func(obj any) (any, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return obj, nil // a tombstone or another non-object: kept as is
	}
	m.SetManagedFields(nil)
	delete(m.GetAnnotations(), lastApplied) // the object's own map; a nil one is fine
	return obj, nil
}
