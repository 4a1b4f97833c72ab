package kube

import (
	"go.uber.org/zap"
	v1 "k8s.io/api/core/v1"
)

// TaintToBeDeleted is the taint the cluster autoscaler puts on a Node it is
// about to remove (KEP-3836: kube-proxy then fails /healthz so that load
// balancers drain the node first).
const TaintToBeDeleted = "ToBeDeletedByClusterAutoscaler"

// Eligibility says whether a Node may take load balancer traffic, like
// kube-proxy: not while it is being deleted or tainted ToBeDeletedByClusterAutoscaler.
func Eligibility(n *v1.Node) (bool, string) {
	if n.DeletionTimestamp != nil {
		return false, "the Node is being deleted"
	}
	for _, t := range n.Spec.Taints {
		if t.Key == TaintToBeDeleted {
			return false, "the Node is tainted " + TaintToBeDeleted + " (the cluster autoscaler is removing it)"
		}
	}
	return true, ""
}

// eligibility tells Health (when it listens) whether the Node may take traffic.
func (s *Source) eligibility(ok bool, why string) {
	h, listens := s.cfg.Health.(interface{ NodeEligible(bool, string) })
	if !listens {
		return
	}
	if !ok {
		s.cfg.Log.Warn("this node is not eligible for load balancer traffic; /healthz fails until it is", zap.String("why", why))
	}
	h.NodeEligible(ok, why)
}
