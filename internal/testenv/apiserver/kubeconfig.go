package apiserver

import (
	"net"
	"os"
	"strconv"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// RESTConfig returns a new client configuration for the admin user. Client-side rate limiting is raised far
// above client-go's default of 5 requests per second, which would make loading thousands of objects take minutes.
func (s *Server) RESTConfig() *rest.Config {
	return &rest.Config{
		Host:            s.URL,
		BearerToken:     s.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.caPEM},
		QPS:             1000,
		Burst:           2000,
	}
}

// WriteKubeconfig writes a kubeconfig for the admin user, with the CA certificate embedded, that reaches the
// server at https://serverHost:Port; an empty serverHost means the host of URL. A VM guest uses 10.0.2.2, which must
// then be among Options.SANIPs. The file is replaced atomically, so a script polling for it never reads half.
func (s *Server) WriteKubeconfig(path, serverHost string) error {
	if serverHost == "" {
		serverHost = strings.TrimSuffix(strings.TrimPrefix(s.URL, "https://"), ":"+strconv.Itoa(s.Port))
		serverHost = strings.Trim(serverHost, "[]")
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["apiserver"] = &clientcmdapi.Cluster{
		Server:                   "https://" + net.JoinHostPort(serverHost, strconv.Itoa(s.Port)),
		CertificateAuthorityData: s.caPEM,
	}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: s.Token}
	cfg.Contexts["admin"] = &clientcmdapi.Context{Cluster: "apiserver", AuthInfo: "admin"}
	cfg.CurrentContext = "admin"
	tmp := path + ".tmp"
	if err := clientcmd.WriteToFile(*cfg, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
