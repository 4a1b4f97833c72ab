package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDeploy deploys ipvs-proxy exactly as the README's "Deploy" section says, on a node that has never had a
// service proxy (no IPVS state, nothing serving the kubernetes Service), and checks what users rely on: the pod
// becomes Ready; default/kubernetes, a ClusterIP, a NodePort and a headless Service work from pods and from the
// node; a pod resolves Service names through CoreDNS (itself reaching the API server through a ClusterIP);
// `ipvs-proxy status` works through kubectl exec; a reboot brings traffic back by itself; and the kube-proxy
// ConfigMap variant reads kubeadm's ConfigMap unchanged, scheduler change included. The subtests depend on each
// other and run in this order.
func TestDeploy(t *testing.T) {
	c := Start(t, Options{})
	node := c.Nodes[0]
	user := newUserShell(t, c)
	ctx := context.Background()

	if out, _ := node.Exec(ctx, "ipvsadm", "-Ln"); hasVirtualServers(out) {
		t.Fatalf("the node must start without IPVS state:\n%s", out)
	}
	// The workload and cluster DNS first, as in any cluster: CoreDNS cannot become Ready before something
	// serves the kubernetes Service.
	for _, f := range []string{"coredns.yaml", "workload.yaml"} {
		if _, err := c.Kubectl(ctx, "", "apply", "-f", filepath.Join(c.Root(), "e2e/cluster/testdata", f)); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("apply", func(t *testing.T) {
		began := time.Now()
		user.run(t, 2*time.Minute, readmeSetServer, readmeSedServer)
		user.run(t, 2*time.Minute, readmeApply)
		user.run(t, 10*time.Minute, readmeRollout)
		t.Logf("ipvs-proxy rolled out in %v", time.Since(began).Round(time.Second))
		waitCtx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		for _, w := range []struct {
			ns, sel string
			n       int
		}{{"kube-system", "app.kubernetes.io/name=ipvs-proxy", 1}, {"kube-system", "k8s-app=kube-dns", 2}, {"default", "app=web", 2}, {"default", "app=client", 1}} {
			if _, err := c.WaitPodsReady(waitCtx, w.ns, w.sel, w.n); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("CoreDNS and the workload Ready %v after the apply", time.Since(began).Round(time.Second))
	})
	if t.Failed() {
		return
	}
	t.Run("services", func(t *testing.T) { checkServices(t, c, user) })

	t.Run("status", func(t *testing.T) {
		out := user.run(t, 2*time.Minute, readmeStatus)
		for _, want := range []string{"default/web", "NodePort", "rr"} {
			if !strings.Contains(out, want) {
				t.Errorf("ipvs-proxy status does not show %q", want)
			}
		}
		// the image's ipvsadm, in the pod's (the host's) network namespace: the ClusterIP and the NodePort on
		// the node's address, each with both web pods behind it
		svc, err := c.Client.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		web, err := c.WaitPodsReady(ctx, "default", "app=web", 2)
		if err != nil {
			t.Fatal(err)
		}
		out = user.run(t, 2*time.Minute, readmePodIPVS)
		for _, want := range []string{"TCP  " + svc.Spec.ClusterIP + ":80 rr", "TCP  " + node.IP + ":30080 rr",
			"-> " + web[0].Status.PodIP + ":8080", "-> " + web[1].Status.PodIP + ":8080"} {
			if !strings.Contains(out, want) {
				t.Errorf("ipvsadm -Ln in the pod does not show %q", want)
			}
		}
	})

	t.Run("reboot", func(t *testing.T) {
		began := time.Now()
		if err := node.Reboot(ctx); err != nil {
			t.Fatal(err)
		}
		if out, _ := node.Exec(ctx, "ipvsadm", "-Ln"); hasVirtualServers(out) {
			t.Fatalf("a rebooted node's kernel has no IPVS state yet:\n%s", out)
		}
		waitCtx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		if err := c.WaitNodeReady(waitCtx, node); err != nil {
			t.Fatal(err)
		}
		// Nobody does anything: the kubelet restarts the DaemonSet's pod, which programs the Services again.
		svc, err := c.Client.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		err = eventually(ctx, 10*time.Minute, func(ctx context.Context) error {
			_, err := httpGet(ctx, "http://"+node.IP+":30080/hostname")
			if err != nil {
				return err
			}
			_, err = node.Exec(ctx, "curl", "-sS", "--max-time", "5", "http://"+svc.Spec.ClusterIP+"/hostname")
			return err
		})
		if err != nil {
			t.Fatalf("traffic did not come back after the reboot: %v", err)
		}
		t.Logf("NodePort and ClusterIP answer again %v after the reboot began", time.Since(began).Round(time.Second))
		if _, err := c.WaitPodsReady(waitCtx, "default", "app=web", 2); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitPodsReady(waitCtx, "kube-system", "k8s-app=kube-dns", 2); err != nil {
			t.Fatal(err)
		}
		checkServices(t, c, user)
	})

	t.Run("kube-proxy-configmap", func(t *testing.T) { kubeProxyConfigMap(t, c, user) })
}

// checkServices checks every kind of Service from a pod, from the node, and from outside.
func checkServices(t *testing.T, c *Cluster, user *userShell) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	node := c.Nodes[0]
	web, err := c.WaitPodsReady(ctx, "default", "app=web", 2)
	if err != nil {
		t.Fatal(err)
	}
	clients, err := c.WaitPodsReady(ctx, "default", "app=client", 1)
	if err != nil {
		t.Fatal(err)
	}
	backends := []string{web[0].Name, web[1].Name}
	client := clients[0].Status.PodIP
	svc, err := c.Client.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vip := svc.Spec.ClusterIP

	// The first request may wait for an endpoint change to reach the kernel.
	if err := eventually(ctx, 2*time.Minute, func(ctx context.Context) error {
		r, err := dialFromPod(ctx, client, vip, 80, 1)
		if err == nil && len(r.Errors) > 0 {
			return fmt.Errorf("%v", r.Errors)
		}
		return err
	}); err != nil {
		t.Fatalf("ClusterIP %s from a pod: %v", vip, err)
	}
	r, err := dialFromPod(ctx, client, vip, 80, 10)
	answeredBy(t, "ClusterIP from a pod", r, err, backends)
	r, err = dialFromPod(ctx, client, "web", 80, 10)
	answeredBy(t, "ClusterIP by name (CoreDNS) from a pod", r, err, backends)
	// A headless Service is DNS alone (nothing proxies it): its name resolves to every ready pod.
	// (a query can go unanswered on a loaded node, as any UDP query: the check retries)
	if err := eventually(ctx, time.Minute, func(ctx context.Context) error {
		out, err := c.Kubectl(ctx, "", "exec", "client", "--", "dig", "+short", "web-headless.default.svc.cluster.local")
		for _, pod := range web {
			if err == nil && !slices.Contains(strings.Fields(out), pod.Status.PodIP) {
				err = fmt.Errorf("%q lacks %s's address %s", out, pod.Name, pod.Status.PodIP)
			}
		}
		return err
	}); err != nil {
		t.Errorf("headless Service's name from a pod: %v", err)
	}
	r, err = dialFromPod(ctx, client, "web-headless", 8080, 10)
	answeredWithin(t, "headless Service by name from a pod", r, err, backends)
	r, err = dialFromPod(ctx, client, node.IP, 30080, 10)
	answeredBy(t, "NodePort from a pod", r, err, backends)
	r, err = fromNode(ctx, node, "http://"+vip+"/hostname", 10)
	answeredBy(t, "ClusterIP from the node", r, err, backends)
	r, err = fromNode(ctx, node, "http://"+node.IP+":30080/hostname", 10)
	answeredBy(t, "NodePort from the node", r, err, backends)
	r, err = fromOutside(ctx, "http://"+node.IP+":30080/hostname", 10)
	answeredBy(t, "NodePort from outside the node", r, err, backends)

	// default/kubernetes: the API server behind its ClusterIP, from the node and from a pod.
	if out, err := node.Exec(ctx, "curl", "-sSk", "--max-time", "10", "https://10.96.0.1/version"); err != nil ||
		!strings.Contains(out, "gitVersion") {
		t.Errorf("default/kubernetes from the node: %q %v", out, err)
	}
	if _, err := c.Kubectl(ctx, "", "exec", "client", "--", "/agnhost", "connect", "--timeout=10s", "10.96.0.1:443"); err != nil {
		t.Errorf("default/kubernetes from a pod: %v", err)
	}
	_ = user
}

// fromNode makes n requests with curl on the node and collects the answers as /dial would.
func fromNode(ctx context.Context, node *Node, u string, n int) (dialResult, error) {
	var r dialResult
	for range n {
		out, err := node.Exec(ctx, "curl", "-sS", "--max-time", "10", u)
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
			continue
		}
		r.Responses = append(r.Responses, strings.TrimSpace(out))
	}
	return r, nil
}

// fromOutside makes n requests from the host's end of the cluster network.
func fromOutside(ctx context.Context, u string, n int) (dialResult, error) {
	var r dialResult
	for range n {
		body, err := httpGet(ctx, u)
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
			continue
		}
		r.Responses = append(r.Responses, body)
	}
	return r, nil
}

// kubeProxyConfigMap replaces the deployment with the kube-proxy ConfigMap variant over a ConfigMap shaped
// exactly like kubeadm's (mode ipvs, scheduler lc), then changes the scheduler the way the README says.
func kubeProxyConfigMap(t *testing.T, c *Cluster, user *userShell) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	node := c.Nodes[0]
	if _, err := c.Kubectl(ctx, "", "-n", "kube-system", "delete", "daemonset", "ipvs-proxy", "--wait=true"); err != nil {
		t.Fatal(err)
	}
	cm, err := os.ReadFile(filepath.Join(c.Root(), "manifests/testdata/kubeadm-kube-proxy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kubeadm := strings.Replace(string(cm), "https://192.0.2.10:6443", c.ControlPlaneEndpoint(), 1)
	if _, err := c.Kubectl(ctx, kubeadm, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	user.run(t, 2*time.Minute, readmeOverlay)
	user.run(t, 10*time.Minute, readmeRollout)
	svc, err := c.Client.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitScheduler(t, ctx, user, node, svc, "lc")

	// kubectl edit, without an editor.
	edit := `kubectl -n kube-system get configmap kube-proxy -o yaml | sed 's/scheduler: lc/scheduler: wrr/' | kubectl replace -f -`
	if _, err := runShell(ctx, c, edit); err != nil {
		t.Fatal(err)
	}
	user.run(t, 2*time.Minute, readmeRestart)
	user.run(t, 10*time.Minute, readmeRollout)
	waitScheduler(t, ctx, user, node, svc, "wrr")
}

// waitScheduler waits until ipvsadm -Ln on the node shows the Service's virtual server with scheduler.
func waitScheduler(t *testing.T, ctx context.Context, user *userShell, node *Node, svc *v1.Service, scheduler string) {
	t.Helper()
	want := "TCP  " + svc.Spec.ClusterIP + ":80 " + scheduler
	var out string
	err := eventually(ctx, 5*time.Minute, func(context.Context) error {
		out = user.onNode(t, node, readmeIPVSAdm)
		if !strings.Contains(out, want) {
			return fmt.Errorf("no %q", want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ipvsadm -Ln on the node: %v:\n%s", err, out)
	}
	t.Logf("ipvsadm -Ln shows %q", want)
}

// hasVirtualServers tells whether ipvsadm -Ln lists any virtual server.
func hasVirtualServers(ipvsadm string) bool {
	for _, l := range strings.Split(ipvsadm, "\n") {
		if strings.HasPrefix(l, "TCP") || strings.HasPrefix(l, "UDP") || strings.HasPrefix(l, "SCTP") {
			return true
		}
	}
	return false
}
