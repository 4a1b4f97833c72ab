// Package ociimage writes container images as OCI archives, the tarred OCI image layout that `ctr images import`,
// skopeo (oci-archive:) and podman load read, from files on this machine: no Docker daemon, no registry, no base
// image. The image manifest, config and layer are made with go-containerregistry, the field's library for this;
// the archive around them is a few lines of archive/tar.
//
// Every image has one layer, built deterministically (entries sorted, one fixed time, owned by root), so the same
// inputs give the same digests.
package ociimage

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image describes an image to write.
type Image struct {
	// Ref is the image's full name with its tag, e.g. ghcr.io/ipvs-proxy/ipvs-proxy:v0.1.0.
	Ref string
	// Content is the layer: directory trees and single files, in order (a later entry replaces an earlier one at
	// the same path).
	Content []Source
	// The image config: what a runtime starts, as in a Dockerfile's ENTRYPOINT, CMD, ENV, WORKDIR and LABEL.
	Entrypoint, Cmd, Env []string
	WorkingDir           string
	Labels               map[string]string
	// Created is the image's creation time and every file's modification time. Default: the Unix epoch.
	Created time.Time
}

// Source is a directory tree or a file on this machine and where it goes in the image.
type Source struct {
	// From is a directory (its contents are copied, like COPY dir/ /dest) or a file.
	From string
	// To is the absolute destination: the directory the tree's contents go into, or the file's path.
	To string
}

// Write writes img as an OCI archive to out (replaced atomically) and returns the image's manifest digest.
func Write(img Image, out string) (v1.Hash, error) {
	layerTar, err := buildLayer(img.Content, img.Created)
	if err != nil {
		return v1.Hash{}, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return v1.Hash{}, err
	}
	image, err := assemble(img, layer)
	if err != nil {
		return v1.Hash{}, err
	}
	tmp := out + ".tmp"
	if err := writeArchive(image, img.Ref, tmp, img.Created); err != nil {
		_ = os.Remove(tmp)
		return v1.Hash{}, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return v1.Hash{}, err
	}
	return image.Digest()
}

// assemble makes an OCI image of one layer with img's config.
func assemble(img Image, layer v1.Layer) (v1.Image, error) {
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	withLayer, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := withLayer.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Created = v1.Time{Time: img.Created.UTC()}
	cfg.Config.Entrypoint = img.Entrypoint
	cfg.Config.Cmd = img.Cmd
	cfg.Config.Env = img.Env
	cfg.Config.WorkingDir = img.WorkingDir
	cfg.Config.Labels = img.Labels
	cfg.History = []v1.History{{Created: cfg.Created, CreatedBy: "ipvs-proxy ociimage"}}
	return mutate.ConfigFile(withLayer, cfg)
}

// writeArchive writes the OCI image layout of image, named ref, as a tar file.
func writeArchive(image v1.Image, ref string, out string, mtime time.Time) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, data []byte) error {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	blobs, desc, err := blobsOf(image)
	if err != nil {
		return err
	}
	index, err := indexFor(desc, ref)
	if err != nil {
		return err
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := add("index.json", index); err != nil {
		return err
	}
	for _, b := range blobs {
		if err := add(path.Join("blobs", b.digest.Algorithm, b.digest.Hex), b.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

type blob struct {
	digest v1.Hash
	data   []byte
}

// blobsOf returns the manifest, config and layer blobs of image and the manifest's descriptor.
func blobsOf(image v1.Image) ([]blob, v1.Descriptor, error) {
	manifest, err := image.RawManifest()
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	digest, err := image.Digest()
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	config, err := image.RawConfigFile()
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	configDigest, err := image.ConfigName()
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	blobs := []blob{{digest, manifest}, {configDigest, config}}
	layers, err := image.Layers()
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, v1.Descriptor{}, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, v1.Descriptor{}, err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, v1.Descriptor{}, err
		}
		blobs = append(blobs, blob{d, data})
	}
	mt, err := image.MediaType()
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	return blobs, v1.Descriptor{MediaType: mt, Size: int64(len(manifest)), Digest: digest}, nil
}

// indexFor returns index.json naming the image twice: by the OCI annotation (the tag, as the image-spec says) and
// by the one containerd's importer reads for the full name, so `ctr images import` needs no --base-name.
func indexFor(desc v1.Descriptor, ref string) ([]byte, error) {
	i := lastColonAfterSlash(ref)
	if i < 0 {
		return nil, fmt.Errorf("image reference %q has no tag", ref)
	}
	tag := ref[i+1:]
	desc.Annotations = map[string]string{
		"org.opencontainers.image.ref.name": tag,
		"io.containerd.image.name":          ref,
	}
	desc.Platform = &v1.Platform{OS: "linux", Architecture: "amd64"}
	return json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests:     []v1.Descriptor{desc},
	})
}

// lastColonAfterSlash finds the tag separator of ref: the last colon after the last slash (a registry host may
// carry a port).
func lastColonAfterSlash(ref string) int {
	for i := len(ref) - 1; i >= 0; i-- {
		switch ref[i] {
		case ':':
			return i
		case '/':
			return -1
		}
	}
	return -1
}
