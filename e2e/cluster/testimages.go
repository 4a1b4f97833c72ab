package cluster

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ipvs-proxy/ipvs-proxy/internal/ociimage"
)

// The images of Kubernetes' end-to-end suite that its Service, DNS and networking tests run, under the names
// k8s.io/kubernetes/test/utils/image gives them for the cluster's version. Upstream builds them FROM a
// distribution image; here the distribution's part is Debian's packages (scripts/k8s/build.sh e2e-rootfs:
// a shell, curl, nc, ip, dig, awk, hostname), so that the suite's `kubectl exec ... /bin/sh -c 'curl ...'` and
// DNS probe scripts run as they do upstream.
const (
	// JessieDnsutilsImage is the suite's DNS prober image: Debian with dig.
	JessieDnsutilsImage = "registry.k8s.io/e2e-test-images/jessie-dnsutils:1.7"
)

// e2eRootfs is the test images' file system, built by scripts/k8s/build.sh e2e-rootfs beside the binaries.
func (c *Cluster) e2eRootfs() string { return filepath.Join(filepath.Dir(c.binDir), "rootfs", "e2e") }

// e2eImages returns agnhost and jessie-dnsutils: agnhost as upstream's Dockerfile lays it out (the binary at /,
// agnhost-2 linking to it, /uploads for netexec, the user and group the security context tests look up).
func (c *Cluster) e2eImages(dir string) ([]ociimage.Image, error) {
	rootfs := c.e2eRootfs()
	if _, err := os.Stat(filepath.Join(rootfs, "usr", "bin", "sh")); err != nil {
		return nil, fmt.Errorf("no test image file system in %s: run scripts/k8s/build.sh e2e-rootfs", rootfs)
	}
	extra := filepath.Join(dir, "agnhost-extra")
	if err := os.MkdirAll(filepath.Join(extra, "uploads"), 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(extra, "etc"), 0o755); err != nil {
		return nil, err
	}
	_ = os.Remove(filepath.Join(extra, "agnhost-2"))
	if err := os.Symlink("agnhost", filepath.Join(extra, "agnhost-2")); err != nil {
		return nil, err
	}
	passwd, err := os.ReadFile(filepath.Join(rootfs, "etc", "passwd"))
	if err != nil {
		return nil, err
	}
	group, err := os.ReadFile(filepath.Join(rootfs, "etc", "group"))
	if err != nil {
		return nil, err
	}
	passwd = append(passwd, "user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\n"...)
	group = append(group, "user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n"...)
	if err := os.WriteFile(filepath.Join(extra, "etc", "passwd"), passwd, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(extra, "etc", "group"), group, 0o644); err != nil {
		return nil, err
	}
	return []ociimage.Image{
		{
			Ref: AgnhostImage,
			Content: []ociimage.Source{{From: rootfs, To: "/"}, {From: extra, To: "/"},
				{From: filepath.Join(c.binDir, "agnhost"), To: "/agnhost"}},
			Entrypoint: []string{"/agnhost"},
			Cmd:        []string{"pause"},
		},
		{Ref: JessieDnsutilsImage, Content: []ociimage.Source{{From: rootfs, To: "/"}}, Cmd: []string{"/bin/bash"}},
	}, nil
}
