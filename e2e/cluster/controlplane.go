package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/apiserver"
)

// Identities of the control plane components and the kubelets, as kubeadm names them, so that the API server's
// Node and RBAC authorizers and the default RBAC bindings treat them as in a kubeadm cluster.
const (
	controllerManagerUser = "system:kube-controller-manager"
	schedulerUser         = "system:kube-scheduler"
)

func kubeletUser(node string) string { return "system:node:" + node }

// controlPlane is etcd and kube-apiserver (internal/testenv/apiserver), kube-controller-manager and
// kube-scheduler, all on the host, inside the cluster's network namespace.
type controlPlane struct {
	server     *apiserver.Server
	components []*process
	caPEM      []byte
	// AdminKubeconfig is the admin's kubeconfig (system:masters), for kubectl and client-go.
	adminKubeconfig string
}

// startControlPlane starts everything and returns when the API server is ready; the controller manager and
// the scheduler come up in the background (a Node becoming Ready and pods scheduled show they work).
func startControlPlane(ctx context.Context, c *Cluster) (*controlPlane, error) {
	users := []apiserver.User{{Name: controllerManagerUser}, {Name: schedulerUser}}
	for _, n := range c.nodeNames() {
		users = append(users, apiserver.User{Name: kubeletUser(n), Groups: []string{"system:nodes"}})
	}
	hostIP := net.ParseIP(HostIP)
	s, err := apiserver.Start(ctx, apiserver.Options{
		BinDir:             c.binDir,
		BindAddress:        hostIP,
		AdvertiseAddress:   hostIP,
		SANIPs:             []net.IP{hostIP},
		ServiceCIDR:        ServiceCIDR,
		LogDir:             c.logDir,
		Users:              users,
		AuthorizationModes: "Node,RBAC",
		ExtraArgs: []string{
			"--enable-admission-plugins=NodeRestriction",
			// The node's name does not resolve here: reach kubelets (exec, logs) at their InternalIP.
			"--kubelet-preferred-address-types=InternalIP",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("API server: %w", err)
	}
	cp := &controlPlane{server: s}
	if cp.caPEM, err = os.ReadFile(s.CAFile); err != nil {
		return nil, err
	}
	// The CA file lives in the server's temporary directory; the components need it after Start returns.
	caFile := filepath.Join(c.dir, "ca.crt")
	if err := os.WriteFile(caFile, cp.caPEM, 0o644); err != nil {
		return nil, err
	}
	saKey := filepath.Join(c.dir, "service-account.key")
	if err := copyFile(s.SAKeyFile, saKey, 0o600); err != nil {
		return nil, err
	}
	cp.adminKubeconfig = filepath.Join(c.dir, "admin.kubeconfig")
	if err := cp.writeKubeconfig(cp.adminKubeconfig, "admin", s.Token); err != nil {
		return nil, err
	}
	kcm := filepath.Join(c.dir, "controller-manager.kubeconfig")
	sched := filepath.Join(c.dir, "scheduler.kubeconfig")
	if err := cp.writeKubeconfig(kcm, controllerManagerUser, s.Tokens[controllerManagerUser]); err != nil {
		return nil, err
	}
	if err := cp.writeKubeconfig(sched, schedulerUser, s.Tokens[schedulerUser]); err != nil {
		return nil, err
	}
	components := []struct {
		name string
		args []string
	}{
		{"kube-controller-manager", []string{
			"--kubeconfig=" + kcm, "--authentication-kubeconfig=" + kcm, "--authorization-kubeconfig=" + kcm,
			"--leader-elect=false", "--bind-address=127.0.0.1",
			"--use-service-account-credentials=true", "--service-account-private-key-file=" + saKey,
			"--root-ca-file=" + caFile, "--service-cluster-ip-range=" + ServiceCIDR,
		}},
		{"kube-scheduler", []string{
			"--kubeconfig=" + sched, "--authentication-kubeconfig=" + sched, "--authorization-kubeconfig=" + sched,
			"--leader-elect=false", "--bind-address=127.0.0.1",
		}},
	}
	for _, comp := range components {
		p, err := startProcess(comp.name, append([]string{filepath.Join(c.binDir, comp.name)}, comp.args...),
			filepath.Join(c.logDir, comp.name+".log"))
		if err != nil {
			cp.stop()
			return nil, err
		}
		cp.components = append(cp.components, p)
	}
	return cp, nil
}

// writeKubeconfig writes a kubeconfig for a token user that reaches the API server at its address on the
// cluster network, with the CA embedded.
func (cp *controlPlane) writeKubeconfig(path, user, token string) error {
	if token == "" {
		return fmt.Errorf("no token for %s", user)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["cluster"] = &clientcmdapi.Cluster{Server: cp.serverURL(), CertificateAuthorityData: cp.caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["default"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: user}
	cfg.CurrentContext = "default"
	return clientcmd.WriteToFile(*cfg, path)
}

// serverURL is the control-plane endpoint: what a kubeadm cluster's controlPlaneEndpoint is.
func (cp *controlPlane) serverURL() string {
	return "https://" + net.JoinHostPort(HostIP, strconv.Itoa(cp.server.Port))
}

// check returns an error if a component has exited.
func (cp *controlPlane) check() error {
	select {
	case <-cp.server.Done():
		return fmt.Errorf("API server: %w", cp.server.Err())
	default:
	}
	for _, p := range cp.components {
		if gone, err := p.exited(); gone {
			return err
		}
	}
	return nil
}

func (cp *controlPlane) stop() {
	for _, p := range cp.components {
		p.stop(10 * time.Second)
	}
	cp.server.Stop()
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}
