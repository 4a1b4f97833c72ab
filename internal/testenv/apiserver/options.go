package apiserver

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Options configures Start. The zero value is usable.
type Options struct {
	// BinDir holds the kube-apiserver and etcd binaries. Default: .cache/k8s/<version>/bin in the repository
	// root, where scripts/k8s/build.sh puts them; the root is found by walking up from the working directory.
	BinDir string
	// SANIPs are added to 127.0.0.1 as IP subject alternative names of the serving certificate, for clients that
	// reach the server through another address: a qemu guest with user networking uses 10.0.2.2.
	SANIPs []net.IP
	// AdvertiseAddress is the address the API server publishes as the endpoint of the default/kubernetes
	// Service, so it should be one where in-cluster clients reach it. Default: the first of SANIPs, else
	// 10.0.2.2, the address that leads a qemu guest with user networking back to this host's loopback. It is
	// always in the certificate. It cannot be a loopback address: the API server would then fail to write the
	// kubernetes Endpoints (loopback addresses are invalid there) and the EndpointSlice would never appear.
	AdvertiseAddress net.IP
	// ServiceCIDR is --service-cluster-ip-range. Default: 10.96.0.0/16.
	ServiceCIDR string
	// LogDir, when set, receives etcd.log and kube-apiserver.log and is kept after Stop. Default: a directory
	// inside the temporary one, removed by Stop.
	LogDir string
	// StartTimeout bounds the whole start, retries included. Default: 2 minutes (3.5-5 s is usual).
	StartTimeout time.Duration
	// BindAddress is where the API server listens. Default: 127.0.0.1. A cluster whose nodes reach it over a
	// link of their own (e2e/cluster) binds that link's address, inside a network namespace of its own.
	BindAddress net.IP
	// Users are token users besides the admin, e.g. a kubelet (system:node:NAME in system:nodes); Server.Tokens
	// has their tokens.
	Users []User
	// AuthorizationModes is --authorization-mode. Default: RBAC.
	AuthorizationModes string
	// ExtraArgs are appended to kube-apiserver's command line.
	ExtraArgs []string
}

// User is an identity the API server accepts a bearer token for.
type User struct {
	Name   string
	Groups []string
}

// QEMUHostIP is the address at which a qemu guest with user networking reaches the host's 127.0.0.1.
const QEMUHostIP = "10.0.2.2"

// DefaultServiceCIDR is the service cluster IP range used when Options.ServiceCIDR is empty.
const DefaultServiceCIDR = "10.96.0.0/16"

// withDefaults returns o with every empty field set; finding the default BinDir reads the file system.
func (o Options) withDefaults() (Options, error) {
	if o.BinDir == "" {
		dir, err := DefaultBinDir()
		if err != nil {
			return o, err
		}
		o.BinDir = dir
	}
	if o.AdvertiseAddress == nil {
		o.AdvertiseAddress = net.ParseIP(QEMUHostIP)
		if len(o.SANIPs) > 0 {
			o.AdvertiseAddress = o.SANIPs[0]
		}
	}
	if o.AdvertiseAddress.IsLoopback() || o.AdvertiseAddress.IsUnspecified() {
		return o, fmt.Errorf("advertise address %s: the kubernetes Service cannot have a loopback or unspecified endpoint",
			o.AdvertiseAddress)
	}
	if o.ServiceCIDR == "" {
		o.ServiceCIDR = DefaultServiceCIDR
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 2 * time.Minute
	}
	if o.AuthorizationModes == "" {
		o.AuthorizationModes = "RBAC"
	}
	if o.BindAddress == nil {
		o.BindAddress = net.IPv4(127, 0, 0, 1)
	}
	return o, nil
}

// wrapperModFile is the go.mod of the module that build.sh builds with, relative to the repository root.
const wrapperModFile = "scripts/k8s/go.mod"

// DefaultBinDir returns the directory scripts/k8s/build.sh builds into: $IPVS_PROXY_CACHE/k8s/<version>/bin
// (default ~/.cache/ipvs-proxy, see scripts/lib/cache.sh), with the version of k8s.io/kubernetes that
// scripts/k8s/go.mod requires.
func DefaultBinDir() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	version, err := kubernetesVersion(filepath.Join(root, wrapperModFile))
	if err != nil {
		return "", err
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "k8s", version, "bin"), nil
}

// CacheDir is where the build scripts cache expensive artefacts: $IPVS_PROXY_CACHE, else
// $XDG_CACHE_HOME/ipvs-proxy, else ~/.cache/ipvs-proxy (the rule of scripts/lib/cache.sh).
func CacheDir() (string, error) {
	if d := os.Getenv("IPVS_PROXY_CACHE"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "ipvs-proxy"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: set IPVS_PROXY_CACHE (%w)", err)
	}
	return filepath.Join(home, ".cache", "ipvs-proxy"), nil
}

// repoRoot returns the nearest directory, from the working directory up, that holds scripts/k8s/go.mod.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, wrapperModFile)); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no %s in %s or above: run from inside the repository or set BinDir",
				wrapperModFile, wd)
		}
	}
}

// kubernetesVersion returns the version of k8s.io/kubernetes that the wrapper module requires.
func kubernetesVersion(modFile string) (string, error) {
	f, err := os.Open(modFile)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "require k8s.io/kubernetes v1.34.4" or, inside a require block, "k8s.io/kubernetes v1.34.4 // indirect".
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && fields[0] == "k8s.io/kubernetes" && strings.HasPrefix(fields[1], "v") {
			return fields[1], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New(modFile + " requires no k8s.io/kubernetes")
}
