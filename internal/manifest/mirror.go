package manifest

import (
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Labels the EndpointSlice mirroring controller uses.
const (
	LabelSkipMirror   = "endpointslice.kubernetes.io/skip-mirror"
	LabelManagedBy    = "endpointslice.kubernetes.io/managed-by"
	mirroringManagers = "endpointslicemirroring-controller.k8s.io"
)

// Mirror converts v1 Endpoints into EndpointSlices as Kubernetes' mirroring
// controller does: one slice per subset and IP family, addresses ready and
// notReadyAddresses not ready. Invalid addresses are skipped with an error.
func Mirror(ep *v1.Endpoints) ([]*discovery.EndpointSlice, []error) {
	if ep.Labels[LabelSkipMirror] == "true" {
		return nil, nil
	}
	var out []*discovery.EndpointSlice
	var errs []error
	for si, subset := range ep.Subsets {
		byFamily := map[discovery.AddressType]*discovery.EndpointSlice{}
		add := func(field string, a v1.EndpointAddress, ready bool) {
			ip, err := netip.ParseAddr(a.IP)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.ip: invalid IP %q", field, a.IP))
				return
			}
			t := discovery.AddressTypeIPv4
			if !ip.Unmap().Is4() {
				t = discovery.AddressTypeIPv6
			}
			es := byFamily[t]
			if es == nil {
				es = newMirrorSlice(ep, si, t, subset.Ports)
				byFamily[t] = es
				out = append(out, es)
			}
			e := discovery.Endpoint{
				Addresses:  []string{ip.Unmap().String()},
				Conditions: discovery.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false)},
				NodeName:   a.NodeName,
			}
			if a.Hostname != "" {
				e.Hostname = ptr.To(a.Hostname)
			}
			es.Endpoints = append(es.Endpoints, e)
		}
		for i, a := range subset.Addresses {
			add(fmt.Sprintf("subsets[%d].addresses[%d]", si, i), a, true)
		}
		for i, a := range subset.NotReadyAddresses {
			add(fmt.Sprintf("subsets[%d].notReadyAddresses[%d]", si, i), a, false)
		}
	}
	return out, errs
}

func newMirrorSlice(ep *v1.Endpoints, subset int, t discovery.AddressType, ports []v1.EndpointPort) *discovery.EndpointSlice {
	es := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ep.Namespace,
			Name:      fmt.Sprintf("%s-mirror-%d-%s", ep.Name, subset, map[discovery.AddressType]string{discovery.AddressTypeIPv4: "ipv4", discovery.AddressTypeIPv6: "ipv6"}[t]),
			Labels:    map[string]string{discovery.LabelServiceName: ep.Name, LabelManagedBy: mirroringManagers},
		},
		AddressType: t,
	}
	for _, p := range ports {
		es.Ports = append(es.Ports, discovery.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(p.Port), Protocol: ptr.To(p.Protocol), AppProtocol: p.AppProtocol})
	}
	return es
}
