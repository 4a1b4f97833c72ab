package desired

import (
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
)

// TestConnReuseMode: like kube-proxy (kubernetes#93297), conn_reuse_mode is
// set to 0 on kernels from 4.1 to before 5.9, where IPVS's connection reuse
// delays new connections by a second; older kernels lack the sysctl, newer
// ones fixed the delay, so it is left alone there.
func TestConnReuseMode(t *testing.T) {
	cases := []struct {
		release string
		want    string // "" means not managed
	}{
		{"5.4.0-150-generic", "0"},
		{"4.1.0", "0"},
		{"4.19.0-26-amd64", "0"},
		{"5.8.18", "0"},
		{"5.8-rc1", "0"},
		{"5.9.0", ""},
		{"5.10.0-28-amd64", ""},
		{"6.1.0-18-amd64", ""},
		{"4.0.9", ""},
		{"3.10.0-1160.el7.x86_64", ""},
		{"", ""},
		{"not-a-version", ""},
	}
	for _, c := range cases {
		in := NewInput(config.Default(), Node{Name: "n", Addresses: addrs("10.0.0.1"), KernelRelease: c.release})
		got, ok := Base(in).Sysctls[SysctlConnReuseMode]
		if (c.want == "") != !ok || got != c.want {
			t.Errorf("kernel %q: %s = %q (managed %v), want %q", c.release, SysctlConnReuseMode, got, ok, c.want)
		}
	}
}
