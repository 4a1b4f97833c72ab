package desired

import (
	"fmt"
	"sort"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// ServiceKey returns "namespace/name".
func ServiceKey(namespace, name string) string { return namespace + "/" + name }

// SliceServiceKey returns the Service an EndpointSlice belongs to, from its
// kubernetes.io/service-name label, or an error naming the missing label.
func SliceServiceKey(es *discovery.EndpointSlice) (string, error) {
	name := es.Labels[discovery.LabelServiceName]
	if name == "" {
		return "", &ObjectError{Kind: "EndpointSlice", Namespace: es.Namespace, Name: es.Name,
			Field: "metadata.labels[" + discovery.LabelServiceName + "]", Msg: "missing: the slice belongs to no Service"}
	}
	return ServiceKey(es.Namespace, name), nil
}

// Build computes the whole desired state from a set of Services and
// EndpointSlices, returning the index and every invalid object.
func Build(in *Input, services []*v1.Service, slices []*discovery.EndpointSlice) (*Index, []error) {
	var errs []error
	byService := map[string][]*discovery.EndpointSlice{}
	for _, es := range slices {
		key, err := SliceServiceKey(es)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		byService[key] = append(byService[key], es)
	}
	sorted := append([]*v1.Service(nil), services...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return ServiceKey(sorted[i].Namespace, sorted[i].Name) < ServiceKey(sorted[j].Namespace, sorted[j].Name)
	})
	x := NewIndex(Base(in))
	seen := map[string]bool{}
	var keys []string
	t := NewTouched()
	for _, svc := range sorted {
		key := ServiceKey(svc.Namespace, svc.Name)
		if seen[key] {
			errs = append(errs, fmt.Errorf("Service %s: defined more than once; the first definition is used", key))
			continue
		}
		seen[key] = true
		keys = append(keys, key)
		x.Replace(key, ForService(in, svc, byService[key]), t)
	}
	for _, key := range keys { // after all: a later Service may take what an earlier one had
		errs = append(errs, x.Errors(key)...)
	}
	return x, errs
}
