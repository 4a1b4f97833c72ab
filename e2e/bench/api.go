package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/workload"
)

// The API runs' node: a namespace routed through the root namespace (see
// framework.NewNamespace), which masquerades its traffic out of eth0 to
// the API server on the host (10.0.2.2, qemu user networking).
const (
	apiNS     = "api-node"
	apiNodeIP = "10.11.0.2"
)

func apiClient(kubeconfig string) (*kubernetes.Clientset, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 1000, 2000
	rc.Timeout = time.Minute
	return kubernetes.NewForConfig(rc)
}

// newAPINS makes the API runs' node namespace, its traffic to the API
// server masqueraded.
func newAPINS() error {
	if _, err := framework.NewNamespace(apiNS, apiNodeIP); err != nil {
		return err
	}
	rule := []string{"-t", "nat", "-C", "POSTROUTING", "-s", apiNodeIP + "/32", "-o", "eth0", "-j", "MASQUERADE"}
	if _, err := run("", framework.IPTablesBin, rule...); err != nil {
		rule[2] = "-A"
		if _, err := run("", framework.IPTablesBin, rule...); err != nil {
			return err
		}
	}
	return nil
}

// createObjects creates the node, the namespace and Services 0..n-1 with
// their slices, from parallel workers.
func createObjects(ctx context.Context, c *kubernetes.Clientset, n int) error {
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: workload.NodeName},
		Status:     v1.NodeStatus{Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: apiNodeIP}}},
	}
	if _, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Node: %w", err)
	}
	ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: workload.Namespace}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Namespace: %w", err)
	}
	return parallel(n, 16, func(i int) error { return createService(ctx, c, workload.ServiceSpec(i)) })
}

func createService(ctx context.Context, c *kubernetes.Clientset, s workload.Spec) error {
	if _, err := c.CoreV1().Services(workload.Namespace).Create(ctx, s.Service(), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Service %s: %w", s.Name(), err)
	}
	if _, err := c.DiscoveryV1().EndpointSlices(workload.Namespace).Create(ctx, s.Slice(), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create EndpointSlice of %s: %w", s.Name(), err)
	}
	return nil
}

func deleteService(ctx context.Context, c *kubernetes.Clientset, s workload.Spec) error {
	err := c.DiscoveryV1().EndpointSlices(workload.Namespace).Delete(ctx, s.Name()+"-1", metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	err = c.CoreV1().Services(workload.Namespace).Delete(ctx, s.Name(), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// deleteObjects deletes Services 0..n-1 and their slices.
func deleteObjects(ctx context.Context, c *kubernetes.Clientset, n int) error {
	return parallel(n, 16, func(i int) error { return deleteService(ctx, c, workload.ServiceSpec(i)) })
}

// setEndpoints replaces Service i's slice endpoints, with or without its extra endpoint.
func setEndpoints(ctx context.Context, c *kubernetes.Clientset, i int, extra bool) error {
	s := workload.ServiceSpec(i)
	if extra {
		s.Endpoints = append(s.Endpoints, workload.ExtraEndpoint(i))
	}
	es, err := c.DiscoveryV1().EndpointSlices(workload.Namespace).Get(ctx, s.Name()+"-1", metav1.GetOptions{})
	if err != nil {
		return err
	}
	es.Endpoints = s.Slice().Endpoints
	_, err = c.DiscoveryV1().EndpointSlices(workload.Namespace).Update(ctx, es, metav1.UpdateOptions{})
	return err
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first errors.
func parallel(n, workers int, fn func(int) error) error {
	next := make(chan int)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if len(errs) < 5 {
						errs = append(errs, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}
