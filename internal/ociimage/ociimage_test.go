package ociimage

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// tree makes a small root: a directory, an executable, a symlink.
func tree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "usr/sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "usr/sbin/tool"), []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("usr/sbin", filepath.Join(dir, "sbin")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestWriteIsDeterministicAndImportable(t *testing.T) {
	root := tree(t)
	bin := filepath.Join(t.TempDir(), "daemon")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	img := Image{
		Ref:        "registry.example:5000/team/app:v1.2.3",
		Content:    []Source{{From: root, To: "/"}, {From: bin, To: "/usr/local/bin/daemon"}},
		Entrypoint: []string{"/usr/local/bin/daemon"},
		Cmd:        []string{"run"},
		Created:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	out := filepath.Join(t.TempDir(), "a.tar")
	first, err := Write(img, out)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Write(img, out+".2")
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Errorf("the same inputs gave %s and %s", first, second)
	}

	files := readArchive(t, out)
	var index v1.IndexManifest
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	ann := index.Manifests[0].Annotations
	if ann["io.containerd.image.name"] != img.Ref || ann["org.opencontainers.image.ref.name"] != "v1.2.3" {
		t.Errorf("index annotations %v", ann)
	}
	if index.Manifests[0].Digest != first {
		t.Errorf("index names %s, Write returned %s", index.Manifests[0].Digest, first)
	}
	var manifest v1.Manifest
	if err := json.Unmarshal(files["blobs/sha256/"+first.Hex], &manifest); err != nil {
		t.Fatal(err)
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(files["blobs/sha256/"+manifest.Config.Digest.Hex], &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Config.Entrypoint, img.Entrypoint) || !slices.Equal(cfg.Config.Cmd, img.Cmd) || cfg.OS != "linux" {
		t.Errorf("config %+v", cfg.Config)
	}
	got := layerListing(t, files["blobs/sha256/"+manifest.Layers[0].Digest.Hex])
	want := []string{
		"sbin -> usr/sbin", "usr/ 755", "usr/local/ 755", "usr/local/bin/ 755", "usr/local/bin/daemon 755",
		"usr/sbin/ 755", "usr/sbin/tool 755",
	}
	if !slices.Equal(got, want) {
		t.Errorf("layer holds\n%v\nwant\n%v", got, want)
	}
}

// readArchive returns every file of a tar by name.
func readArchive(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name], _ = io.ReadAll(tr)
	}
}

// layerListing lists a gzipped layer as "name mode" or "name -> target", in archive order.
func layerListing(t *testing.T, gz []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(strings.NewReader(string(gz)))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeSymlink {
			out = append(out, hdr.Name+" -> "+hdr.Linkname)
			continue
		}
		out = append(out, fmt.Sprintf("%s %o", hdr.Name, hdr.Mode&0o7777))
	}
}
