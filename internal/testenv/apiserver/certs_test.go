package apiserver

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"strings"
	"testing"
)

func TestServingCertificateNames(t *testing.T) {
	dir := t.TempDir()
	c, err := writeCredentials(dir, []net.IP{net.ParseIP("10.0.2.2"), net.ParseIP("127.0.0.1")}, "10.100.0.0/16", nil)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(c.caPEM) {
		t.Fatal("CA file is no PEM certificate")
	}
	cert := readCert(t, c.CertFile)
	for _, name := range []string{"127.0.0.1", "10.0.2.2", "10.100.0.1", "localhost", "kubernetes.default.svc"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("serving certificate for %s: %v", name, err)
		}
	}
	if len(cert.IPAddresses) != 3 {
		t.Errorf("IP SANs %v: want 127.0.0.1 once, the ClusterIP and 10.0.2.2", cert.IPAddresses)
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "10.0.2.3", Roots: roots}); err == nil {
		t.Error("serving certificate valid for 10.0.2.3, which was not asked for")
	}
	tokens, err := os.ReadFile(c.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(tokens), c.Token+",") || !strings.Contains(string(tokens), "system:masters") {
		t.Errorf("token file %q", tokens)
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
