// Package apiserver runs a real etcd and kube-apiserver on the loopback for tests, benchmarks and VM end-to-end
// runs, from the binaries that scripts/k8s/build.sh builds.
//
// Nothing else of a control plane runs: no controller manager (so no EndpointSlice controller, no namespace
// deletion), no scheduler, no kubelet. The API server itself creates default/kubernetes and its EndpointSlice;
// a test creates the Services and EndpointSlices it needs.
package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Server is a running etcd and kube-apiserver pair. Stop ends both.
type Server struct {
	// URL is https://127.0.0.1:Port (or Options.BindAddress). Use the address, not localhost, which may resolve
	// to ::1.
	URL string
	// Port is the API server's secure port on 127.0.0.1.
	Port int
	// Token is a bearer token of a user in system:masters.
	Token string
	// CAFile is the PEM certificate of the CA that signed the serving certificate. Stop removes it.
	CAFile string
	// LogDir holds etcd.log and kube-apiserver.log; Stop removes it unless it came from Options.LogDir.
	LogDir string
	// Tokens are the bearer tokens of Options.Users, by name.
	Tokens map[string]string
	// SAKeyFile is the key that signs service account tokens (a controller manager signs with it too).
	SAKeyFile string

	caPEM     []byte
	tmpDir    string
	etcd      *process
	apiserver *process
	done      chan struct{} // closed when either process has exited
	err       error         // why; set before done is closed
	stopOnce  sync.Once
}

// errPortTaken marks a start that failed because another process bound a chosen port first.
var errPortTaken = errors.New("port taken")

// Start generates credentials in a temporary directory, starts etcd and kube-apiserver on free ports of
// 127.0.0.1 and returns once /readyz answers and default/kubernetes has its EndpointSlice. ctx bounds the start
// only (as does Options.StartTimeout); the processes run until Stop, and are killed if this process dies.
func Start(ctx context.Context, opts Options) (*Server, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := Available(opts.BinDir); err != nil {
		return nil, err
	}
	tmpDir, err := os.MkdirTemp("", "ipvs-proxy-apiserver-")
	if err != nil {
		return nil, err
	}
	s, err := start(ctx, opts, tmpDir)
	if err != nil {
		_ = os.RemoveAll(tmpDir)
		return nil, err
	}
	return s, nil
}

func start(ctx context.Context, opts Options, tmpDir string) (*Server, error) {
	logDir := opts.LogDir
	if logDir == "" {
		logDir = filepath.Join(tmpDir, "logs")
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	creds, err := writeCredentials(tmpDir, append(slices.Clone(opts.SANIPs), opts.AdvertiseAddress), opts.ServiceCIDR,
		opts.Users)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		s, err := launch(ctx, opts, tmpDir, logDir, creds)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			return nil, err
		}
	}
}

// launch makes one attempt at starting etcd, then kube-apiserver, and waiting until both are healthy.
func launch(ctx context.Context, opts Options, tmpDir, logDir string, c *credentials) (*Server, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	dataDir := filepath.Join(tmpDir, "etcd")
	if err := os.RemoveAll(dataDir); err != nil { // left by a failed attempt
		return nil, err
	}
	etcd, err := startProcess("etcd", filepath.Join(opts.BinDir, "etcd"), etcdArgs(etcdURL, dataDir),
		filepath.Join(logDir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	newReq := func() (*http.Request, error) { return http.NewRequest(http.MethodGet, etcdURL+"/health", nil) }
	if err := waitHealthy(ctx, http.DefaultClient, newReq, etcd); err != nil {
		etcd.stop(time.Second)
		return nil, portTaken(err, etcd)
	}

	host := "127.0.0.1"
	if !opts.BindAddress.IsUnspecified() {
		host = opts.BindAddress.String()
	}
	s := &Server{
		URL:       "https://" + net.JoinHostPort(host, strconv.Itoa(ports[1])),
		Port:      ports[1],
		Token:     c.Token,
		Tokens:    c.UserTokens,
		CAFile:    c.CAFile,
		SAKeyFile: c.SAKeyFile,
		LogDir:    logDir,
		caPEM:     c.caPEM,
		tmpDir:    tmpDir,
		etcd:      etcd,
		done:      make(chan struct{}),
	}
	args := apiserverArgs(opts, c, etcdURL, ports[1], filepath.Join(tmpDir, "certs"))
	s.apiserver, err = startProcess("kube-apiserver", filepath.Join(opts.BinDir, "kube-apiserver"), args,
		filepath.Join(logDir, "kube-apiserver.log"))
	if err != nil {
		etcd.stop(5 * time.Second)
		return nil, err
	}
	// /readyz answers before the API server has created default/kubernetes and its EndpointSlice; a proxy's
	// first sync should see them, so wait for those too.
	client := s.httpClient()
	for _, path := range []string{"/readyz", kubernetesServicePath, kubernetesSlicePath} {
		if err := waitHealthy(ctx, client, s.getRequest(path), s.apiserver); err != nil {
			s.apiserver.stop(5 * time.Second)
			etcd.stop(5 * time.Second)
			return nil, portTaken(err, s.apiserver)
		}
	}
	go s.watch()
	return s, nil
}

// portTaken marks err with errPortTaken when p failed to bind.
func portTaken(err error, p *process) error {
	if p.addressInUse() {
		return fmt.Errorf("%w: %w", errPortTaken, err)
	}
	return err
}

func etcdArgs(clientURL, dataDir string) []string {
	return []string{
		"--name=default",
		"--data-dir=" + dataDir,
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		// A single member never talks to peers, so any port will do (k8s' integration tests do the same).
		"--listen-peer-urls=http://127.0.0.1:0",
		"--log-level=warn",
		// Throwaway data: fsync would only make large benchmarks wait for the disk.
		"--unsafe-no-fsync",
	}
}

func apiserverArgs(opts Options, c *credentials, etcdURL string, port int, certDir string) []string {
	return append([]string{
		"--etcd-servers=" + etcdURL,
		// Loopback by default: qemu user networking turns a guest's connection to 10.0.2.2 into one from this
		// host to 127.0.0.1, so a VM guest reaches it too, and nothing outside this machine can.
		"--bind-address=" + opts.BindAddress.String(),
		"--secure-port=" + strconv.Itoa(port),
		"--advertise-address=" + opts.AdvertiseAddress.String(),
		"--tls-cert-file=" + c.CertFile,
		"--tls-private-key-file=" + c.KeyFile,
		"--cert-dir=" + certDir, // unused with the files above, but its default is under /var/run
		"--token-auth-file=" + c.TokenFile,
		"--authorization-mode=" + opts.AuthorizationModes,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + c.SAKeyFile,
		"--service-account-signing-key-file=" + c.SAKeyFile,
		"--service-cluster-ip-range=" + opts.ServiceCIDR,
		"--profiling=false",
		// as in kubeadm's clusters: node agents like kube-proxy (and ipvs-proxy's DaemonSet) run privileged, and
		// the server-side dry runs of the deployment manifests must be judged as a real cluster would
		"--allow-privileged=true",
	}, opts.ExtraArgs...)
}

// freePorts returns n distinct ports of 127.0.0.1 that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close() // held until all are chosen, so that they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (s *Server) httpClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.caPEM)
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		Timeout:   5 * time.Second,
	}
}

const (
	kubernetesServicePath = "/api/v1/namespaces/default/services/kubernetes"
	kubernetesSlicePath   = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes"
)

// getRequest returns a function that makes authenticated GET requests for path.
func (s *Server) getRequest(path string) func() (*http.Request, error) {
	return func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+s.Token)
		return req, nil
	}
}

// watch records which process exits first and closes done.
func (s *Server) watch() {
	select {
	case <-s.etcd.done:
		s.err = s.etcd.exitError()
	case <-s.apiserver.done:
		s.err = s.apiserver.exitError()
	}
	close(s.done)
}

// Done is closed when etcd or kube-apiserver has exited, after Stop or on its own.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err says which process exited first and how, with the end of its log; nil while Done is open.
func (s *Server) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Stop ends kube-apiserver, then etcd (SIGTERM, then SIGKILL after a grace period), waits for both and removes
// the temporary directory; the logs stay when they are in Options.LogDir. Calling it again does nothing.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		grace := 15 * time.Second // it usually takes 1-2 s
		select {
		case <-s.etcd.done:
			grace = 0 // without etcd it would hang until the grace period ends
		default:
		}
		s.apiserver.stop(grace)
		s.etcd.stop(5 * time.Second)
		<-s.done
		_ = os.RemoveAll(s.tmpDir)
	})
}
