package apiserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// credentials are the files kube-apiserver is started with, all inside one directory.
type credentials struct {
	CAFile    string // PEM CA certificate that signed the serving certificate
	CertFile  string // serving certificate
	KeyFile   string // its key
	SAKeyFile string // RSA key that signs and verifies service account tokens
	TokenFile string // --token-auth-file: one token for an admin in system:masters
	Token     string
	// UserTokens are the tokens of the extra users, by name.
	UserTokens map[string]string
	caPEM      []byte
}

// certValidity is long enough for a benchmark left running; the certificates never leave the temp directory.
const certValidity = 30 * 24 * time.Hour

// writeCredentials generates a CA, a serving certificate valid for 127.0.0.1, localhost, the in-cluster names of
// the kubernetes Service and its ClusterIP (the first address of serviceCIDR) and sanIPs, a service account key
// an admin token and one token per user, and writes them into dir.
func writeCredentials(dir string, sanIPs []net.IP, serviceCIDR string, users []User) (*credentials, error) {
	prefix, err := netip.ParsePrefix(serviceCIDR)
	if err != nil {
		return nil, fmt.Errorf("service CIDR: %w", err)
	}
	var ips []net.IP
	for _, ip := range append([]net.IP{net.IPv4(127, 0, 0, 1), net.IP(prefix.Masked().Addr().Next().AsSlice())}, sanIPs...) {
		if !slices.ContainsFunc(ips, ip.Equal) {
			ips = append(ips, ip)
		}
	}
	dnsNames := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local"}

	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "ipvs-proxy test CA"},
		NotBefore:             now.Add(-24 * time.Hour), // a VM guest's clock may lag
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, caCert, err := sign(caTmpl, caKey.Public(), nil, caKey)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}

	servingKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	servingTmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:   caTmpl.NotBefore,
		NotAfter:    caTmpl.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: ips,
		DNSNames:    dnsNames,
	}
	servingDER, _, err := sign(servingTmpl, servingKey.Public(), caCert, caKey)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	servingKeyDER, err := x509.MarshalPKCS8PrivateKey(servingKey)
	if err != nil {
		return nil, err
	}

	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	saKeyDER, err := x509.MarshalPKCS8PrivateKey(saKey)
	if err != nil {
		return nil, err
	}

	token, err := newToken()
	if err != nil {
		return nil, err
	}
	// token,user,uid,"groups": system:masters is allowed everything under any authorizer.
	tokens := token + `,admin,admin,"system:masters"` + "\n"
	userTokens := map[string]string{}
	for _, u := range users {
		t, err := newToken()
		if err != nil {
			return nil, err
		}
		userTokens[u.Name] = t
		tokens += fmt.Sprintf("%s,%s,%s,%q\n", t, u.Name, u.Name, strings.Join(u.Groups, ","))
	}
	c := &credentials{
		CAFile:     filepath.Join(dir, "ca.crt"),
		CertFile:   filepath.Join(dir, "apiserver.crt"),
		KeyFile:    filepath.Join(dir, "apiserver.key"),
		SAKeyFile:  filepath.Join(dir, "service-account.key"),
		TokenFile:  filepath.Join(dir, "tokens.csv"),
		Token:      token,
		UserTokens: userTokens,
		caPEM:      pemBlock("CERTIFICATE", caDER),
	}
	files := []struct {
		path string
		data []byte
	}{
		{c.CAFile, c.caPEM},
		{c.CertFile, pemBlock("CERTIFICATE", servingDER)},
		{c.KeyFile, pemBlock("PRIVATE KEY", servingKeyDER)},
		{c.SAKeyFile, pemBlock("PRIVATE KEY", saKeyDER)},
		{c.TokenFile, []byte(tokens)},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// newToken returns a random bearer token.
func newToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// sign creates a certificate from tmpl for pub, signed by parent (itself when nil) with parentKey.
func sign(tmpl *x509.Certificate, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer) ([]byte, *x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return der, cert, err
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
