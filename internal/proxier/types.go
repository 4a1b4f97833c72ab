package proxier

import (
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// Service is a Kubernetes Service.
type Service = v1.Service

// EndpointSlice is a Kubernetes EndpointSlice.
type EndpointSlice = discovery.EndpointSlice
