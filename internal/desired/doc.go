// Package desired computes, without touching the kernel, the state ipvs-proxy
// wants: desired = f(Services, EndpointSlices, this node, config).
//
// Compute works one Service at a time (ForService → Fragment) so that a change
// to one Service or its endpoints costs only that Service; Index keeps the
// fragments and answers both the whole desired state (full sync) and the part
// a set of changed Services touches (incremental sync). The semantics follow
// kube-proxy's ipvs mode.
//
// This package must not import netlink or IPVS libraries: it is pure.
package desired
