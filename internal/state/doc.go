// Package state describes, as plain comparable values, the kernel objects that
// ipvs-proxy owns: IPVS virtual servers with their real servers, the addresses
// bound on the dummy link kube-ipvs0, ipset members, the iptables rules of its
// chains and the sysctls it sets.
//
// The same types describe the desired state (computed from Services and
// EndpointSlices), the observed state (dumped from the kernel) and the believed
// state (observed plus every operation applied since). The planner diffs two of
// them. Nothing here talks to the kernel.
package state
