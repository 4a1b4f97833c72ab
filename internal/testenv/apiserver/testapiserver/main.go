// Command testapiserver runs etcd and kube-apiserver (see package apiserver) until SIGTERM or SIGINT, for scripts
// that boot a VM against it:
//
//	testapiserver --dir DIR [--san-ip 10.0.2.2]... [--bin-dir D] [--log-dir D] [--service-cidr CIDR]
//
// Once the server is ready it writes DIR/kubeconfig-host (https://127.0.0.1:PORT) and DIR/kubeconfig-guest
// (the first --san-ip, 10.0.2.2 by default: what a qemu guest with user networking dials to reach this host's
// loopback), then prints "ready" on stdout. It exits 1 if etcd or kube-apiserver dies on its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/apiserver"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "testapiserver:", err)
		os.Exit(1)
	}
}

func run() error {
	var opts apiserver.Options
	dir := flag.String("dir", "", "directory for the kubeconfigs and, unless --log-dir says otherwise, the logs (required)")
	flag.StringVar(&opts.BinDir, "bin-dir", "", "directory with kube-apiserver and etcd (default: scripts/k8s/build.sh's cache)")
	flag.StringVar(&opts.LogDir, "log-dir", "", "directory for etcd.log and kube-apiserver.log (default: --dir)")
	flag.StringVar(&opts.ServiceCIDR, "service-cidr", apiserver.DefaultServiceCIDR, "--service-cluster-ip-range")
	flag.Func("san-ip", "extra IP for the serving certificate, repeatable; the first is the guest's address of this host and the advertise address (default 10.0.2.2)", func(s string) error {
		ip := net.ParseIP(s)
		if ip == nil {
			return fmt.Errorf("not an IP address: %q", s)
		}
		opts.SANIPs = append(opts.SANIPs, ip)
		return nil
	})
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if len(opts.SANIPs) == 0 {
		opts.SANIPs = []net.IP{net.ParseIP(apiserver.QEMUHostIP)}
	}
	if opts.LogDir == "" {
		opts.LogDir = *dir
	}
	hostConfig := filepath.Join(*dir, "kubeconfig-host")
	guestConfig := filepath.Join(*dir, "kubeconfig-guest")
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	// A script waiting for the files must not find the previous run's.
	for _, path := range []string{hostConfig, guestConfig} {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}

	ctx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stopSignals()
	began := time.Now()
	s, err := apiserver.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer s.Stop()
	if err := s.WriteKubeconfig(hostConfig, ""); err != nil {
		return err
	}
	if err := s.WriteKubeconfig(guestConfig, opts.SANIPs[0].String()); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "testapiserver: %s ready in %v; kubeconfigs and logs in %s\n",
		s.URL, time.Since(began).Round(time.Millisecond), *dir)
	fmt.Println("ready")

	select {
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "testapiserver: stopping")
		return nil
	case <-s.Done():
		return s.Err()
	}
}
