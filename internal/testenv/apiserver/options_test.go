package apiserver

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultBinDir(t *testing.T) {
	dir, err := DefaultBinDir()
	if err != nil {
		t.Fatal(err)
	}
	version := filepath.Base(filepath.Dir(dir))
	want := filepath.Join("k8s", version, "bin")
	if !strings.HasSuffix(dir, want) || !strings.HasPrefix(version, "v1.") {
		t.Errorf("DefaultBinDir() = %s, want .../k8s/v1.X.Y/bin", dir)
	}
	t.Setenv("IPVS_PROXY_CACHE", "/some/cache")
	if dir, err := DefaultBinDir(); err != nil || !strings.HasPrefix(dir, "/some/cache/k8s/v1.") {
		t.Errorf("with IPVS_PROXY_CACHE: DefaultBinDir() = %s, %v", dir, err)
	}
}

func TestAvailableNamesTheBuildScript(t *testing.T) {
	err := Available(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "scripts/k8s/build.sh") {
		t.Errorf("Available(empty dir) = %v, want an error naming scripts/k8s/build.sh", err)
	}
}

func TestAdvertiseAddressDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string // "" for an error
	}{
		{"no SANs: the qemu host address", Options{}, QEMUHostIP},
		{"first SAN", Options{SANIPs: []net.IP{net.ParseIP("192.0.2.7"), net.ParseIP("10.0.2.2")}}, "192.0.2.7"},
		{"explicit", Options{SANIPs: []net.IP{net.ParseIP("10.0.2.2")}, AdvertiseAddress: net.ParseIP("192.0.2.9")}, "192.0.2.9"},
		{"loopback is refused", Options{AdvertiseAddress: net.ParseIP("127.0.0.1")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.BinDir = "unused"
			got, err := tc.opts.withDefaults()
			if tc.want == "" {
				if err == nil {
					t.Errorf("advertise address %v accepted", got.AdvertiseAddress)
				}
				return
			}
			if err != nil || got.AdvertiseAddress.String() != tc.want {
				t.Errorf("advertise address %v, %v; want %s", got.AdvertiseAddress, err, tc.want)
			}
		})
	}
}
