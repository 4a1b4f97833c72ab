package cluster

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ipvs-proxy/ipvs-proxy/internal/ociimage"
)

// Images every node imports at boot. No registry is reachable: each is built here.
const (
	// AgnhostImage is Kubernetes' test server (netexec, serve-hostname, connect, ...), built from the module
	// proxy by scripts/k8s/build.sh, under the name the e2e suite uses.
	AgnhostImage = "registry.k8s.io/e2e-test-images/agnhost:2.56"
	// CoreDNSImage is the cluster DNS kubeadm deploys, built from the module proxy by scripts/k8s/build.sh.
	CoreDNSImage = "registry.k8s.io/coredns/coredns:v1.12.1"
)

// buildImages writes the OCI archives of the test images into dir and returns them with the ipvs-proxy archive
// that make image built (the very archive users would load).
func (c *Cluster) buildImages(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	pause := filepath.Join(dir, "pause")
	if err := goBuild(c.root, pause, "./e2e/cluster/pause"); err != nil {
		return nil, err
	}
	specs := []struct {
		file, ref, binary string
		entrypoint, cmd   []string
	}{
		{"pause.tar", PauseImage, pause, []string{"/pause"}, nil},
		{"coredns.tar", CoreDNSImage, filepath.Join(c.binDir, "coredns"), []string{"/coredns"}, nil},
	}
	archives := []string{c.proxyImage}
	for _, s := range specs {
		out := filepath.Join(dir, s.file)
		img := ociimage.Image{
			Ref:        s.ref,
			Content:    []ociimage.Source{{From: s.binary, To: s.entrypoint[0]}},
			Entrypoint: s.entrypoint,
			Cmd:        s.cmd,
		}
		if _, err := ociimage.Write(img, out); err != nil {
			return nil, fmt.Errorf("image %s: %w", s.ref, err)
		}
		archives = append(archives, out)
	}
	// agnhost and the suite's other images, with a file system of Debian's tools (testimages.go).
	e2e, err := c.e2eImages(dir)
	if err != nil {
		return nil, err
	}
	for i, img := range e2e {
		out := filepath.Join(dir, fmt.Sprintf("e2e-%d.tar", i))
		if _, err := ociimage.Write(img, out); err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Ref, err)
		}
		archives = append(archives, out)
	}
	return archives, nil
}
