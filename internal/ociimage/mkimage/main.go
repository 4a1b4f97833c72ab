// Command mkimage packs the last stage of a Dockerfile into an OCI archive without a Docker daemon (see package
// ociimage): scripts/image/build.sh runs the build stage's commands on this machine, then
//
//	mkimage --dockerfile manifests/Dockerfile --stage build=DIR --ref NAME:TAG --out FILE [--label K=V]... [--created RFC3339]
//
// where DIR holds what the build stage makes, at the same paths (DIR/rootfs, DIR/out/ipvs-proxy). It prints the
// image's manifest digest.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/ociimage"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run() error {
	stages := map[string]string{}
	labels := map[string]string{}
	dockerfile := flag.String("dockerfile", "", "the Dockerfile whose last stage is packed (required)")
	buildContext := flag.String("context", ".", "the build context, for COPY without --from")
	ref := flag.String("ref", "", "the image's name and tag (required)")
	out := flag.String("out", "", "the OCI archive to write (required)")
	created := flag.String("created", "1970-01-01T00:00:00Z", "creation time of the image and its files (RFC 3339)")
	flag.Func("stage", "NAME=DIR: what stage NAME made, at the same paths (repeatable)", pair(stages))
	flag.Func("label", "K=V: an image label (repeatable)", pair(labels))
	flag.Parse()
	if *dockerfile == "" || *ref == "" || *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	when, err := time.Parse(time.RFC3339, *created)
	if err != nil {
		return fmt.Errorf("--created: %w", err)
	}
	img, err := ociimage.FromDockerfile(*dockerfile, stages, *buildContext)
	if err != nil {
		return err
	}
	img.Ref, img.Created = *ref, when
	if img.Labels == nil {
		img.Labels = map[string]string{}
	}
	for k, v := range labels {
		img.Labels[k] = v
	}
	digest, err := ociimage.Write(img, *out)
	if err != nil {
		return err
	}
	fmt.Println(digest)
	return nil
}

func pair(m map[string]string) func(string) error {
	return func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return fmt.Errorf("want K=V, got %q", s)
		}
		m[k] = v
		return nil
	}
}
