package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/workload"
)

// The namespace the API runs use: a veth to the root namespace, which
// masquerades its traffic out of eth0 to the API server on the host
// (10.0.2.2, qemu user networking).
const (
	apiNodeIP = "10.11.0.2"
	apiGWIP   = "10.11.0.1"
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

// newAPINS makes namespace name with apiNodeIP on a veth to the root
// namespace and a default route out through it.
func newAPINS(name string) error {
	deleteNS(name)
	_, _ = run("", ipBin, "link", "del", "ve-api")
	if _, err := run("", ipBin, "netns", "add", name); err != nil {
		return err
	}
	root := []string{
		"link add ve-api type veth peer name eth0 netns " + name,
		"addr add " + apiGWIP + "/30 dev ve-api",
		"link set ve-api up",
	}
	inside := []string{
		"link set lo up",
		"addr add " + apiNodeIP + "/30 dev eth0",
		"link set eth0 up",
		"route add default via " + apiGWIP,
	}
	if _, err := runInput(strings.Join(root, "\n")+"\n", ipBin, "-batch", "-"); err != nil {
		return err
	}
	if _, err := runInput(strings.Join(inside, "\n")+"\n", ipBin, "-n", name, "-batch", "-"); err != nil {
		return err
	}
	if err := writeFile("/proc/sys/net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	rule := []string{"-t", "nat", "-C", "POSTROUTING", "-s", apiNodeIP + "/32", "-o", "eth0", "-j", "MASQUERADE"}
	if _, err := run("", iptablesBin, rule...); err != nil {
		rule[2] = "-A"
		if _, err := run("", iptablesBin, rule...); err != nil {
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
