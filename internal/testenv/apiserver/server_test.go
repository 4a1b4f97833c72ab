package apiserver

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func TestStartServesTheAPI(t *testing.T) {
	SkipIfUnavailable(t)
	logDir := t.TempDir()
	began := time.Now()
	s := StartForTest(t, Options{SANIPs: []net.IP{net.ParseIP("10.0.2.2")}, LogDir: logDir})
	t.Logf("ready in %v at %s", time.Since(began).Round(time.Millisecond), s.URL)

	client := kubernetes.NewForConfigOrDie(s.RESTConfig())
	ctx := t.Context()

	t.Run("version", func(t *testing.T) {
		root, err := repoRoot()
		if err != nil {
			t.Fatal(err)
		}
		want, err := kubernetesVersion(filepath.Join(root, wrapperModFile))
		if err != nil {
			t.Fatal(err)
		}
		v, err := client.Discovery().ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		if v.GitVersion != want {
			t.Errorf("/version says %q, want %q (build.sh's -ldflags -X)", v.GitVersion, want)
		}
	})

	t.Run("default kubernetes Service and its EndpointSlice", func(t *testing.T) {
		svcs, err := client.CoreV1().Services("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(svcs.Items) != 1 || svcs.Items[0].Name != "kubernetes" || svcs.Items[0].Spec.ClusterIP != "10.96.0.1" {
			t.Fatalf("services in default: %+v, want only kubernetes with ClusterIP 10.96.0.1", svcs.Items)
		}
		slice, err := client.DiscoveryV1().EndpointSlices("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(slice.Endpoints) != 1 || slice.Endpoints[0].Addresses[0] != "10.0.2.2" ||
			*slice.Ports[0].Port != int32(s.Port) {
			t.Errorf("kubernetes EndpointSlice: %+v, %+v; want 10.0.2.2 (the advertise address) port %d",
				slice.Endpoints, slice.Ports, s.Port)
		}
	})

	t.Run("create a Service and its EndpointSlice", func(t *testing.T) {
		svc, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
				{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)},
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.ClusterIP == "" {
			t.Error("no ClusterIP allocated")
		}
		_, err = client.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Name:   "web-1",
				Labels: map[string]string{discoveryv1.LabelServiceName: "web"},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{
				Addresses:  []string{"10.244.1.7"},
				Conditions: discoveryv1.EndpointConditions{Ready: ref(true)},
			}},
			Ports: []discoveryv1.EndpointPort{{Name: ref("http"), Port: ref[int32](8080)}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		slices, err := client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=web",
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(slices.Items) != 1 {
			t.Errorf("EndpointSlices of web: %d, want 1", len(slices.Items))
		}
	})

	t.Run("kubeconfig", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "kubeconfig")
		if err := s.WriteKubeconfig(path, ""); err != nil {
			t.Fatal(err)
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	s.Stop()
	select {
	case <-s.Done():
	default:
		t.Error("Done still open after Stop")
	}
	if _, err := os.Stat(s.tmpDir); !os.IsNotExist(err) {
		t.Errorf("temporary directory %s left after Stop: %v", s.tmpDir, err)
	}
	if _, err := os.Stat(filepath.Join(logDir, "kube-apiserver.log")); err != nil {
		t.Errorf("log in Options.LogDir not kept: %v", err)
	}
}

func TestDoneWhenAProcessDies(t *testing.T) {
	s := StartForTest(t, Options{})
	if err := s.etcd.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done still open 10 s after etcd was killed")
	}
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "etcd exited") {
		t.Errorf("Err() = %v, want one saying etcd exited", err)
	}
}

func ref[T any](v T) *T { return &v }
