package kube

import (
	"context"
	"errors"
	"strings"

	"go.uber.org/zap"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
)

// Events reports Services that cannot be programmed as Warning Events on the
// Service (events.k8s.io/v1, like kube-proxy), one per change of their errors.
type Events struct {
	recorder    events.EventRecorder
	broadcaster events.EventBroadcaster
	lookup      func(namespace, name string) *v1.Service
	log         *zap.Logger
}

// NewEvents returns a reporter that writes Events through client as
// reportingController ipvs-proxy, reportingInstance the node.
func NewEvents(client kubernetes.Interface, node string, lookup func(namespace, name string) *v1.Service, log *zap.Logger) *Events {
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: client.EventsV1()})
	return &Events{recorder: b.NewRecorder(scheme.Scheme, "ipvs-proxy"+"/"+node), broadcaster: b, lookup: lookup, log: log}
}

// Start starts sending Events until ctx is done.
func (e *Events) Start(ctx context.Context) {
	e.broadcaster.StartRecordingToSink(ctx.Done())
}

// ServiceErrors implements the proxier's Reporter.
func (e *Events) ServiceErrors(service string, errs []error) {
	if len(errs) == 0 {
		return
	}
	ns, name, _ := strings.Cut(service, "/")
	svc := e.lookup(ns, name)
	if svc == nil {
		return
	}
	var obj runtime.Object = svc
	msg := errors.Join(errs...).Error()
	if len(msg) > 1000 {
		msg = msg[:1000] + "…"
	}
	e.recorder.Eventf(obj, nil, v1.EventTypeWarning, "FailedToProgram", "Program", "%s", msg)
}
