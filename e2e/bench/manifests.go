package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/workload"
)

// chunkSize is the number of Services per manifest file: a change rewrites
// one file of the same size whatever N is. The documents are in JSON form,
// which the manifest reader decodes four times faster than YAML.
const chunkSize = 100

// manifests is a directory of n generated Services.
type manifests struct {
	N   int
	Dir string
}

func chunkFile(dir string, c int) string {
	return filepath.Join(dir, fmt.Sprintf("chunk-%03d.yaml", c))
}

// writeManifests writes Services 0..n-1 into dir, chunkSize per file.
func writeManifests(dir string, n int) (*manifests, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	w := &manifests{N: n, Dir: dir}
	for c := 0; c*chunkSize < n; c++ {
		if err := w.writeChunk(c, nil); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// writeChunk (re)writes chunk c atomically; edit, if set, may change its specs.
func (w *manifests) writeChunk(c int, edit func(*workload.Spec)) error {
	var b strings.Builder
	for i := c * chunkSize; i < min(w.N, (c+1)*chunkSize); i++ {
		s := workload.ServiceSpec(i)
		if edit != nil {
			edit(&s)
		}
		b.WriteString(s.JSON())
	}
	return writeAtomic(chunkFile(w.Dir, c), b.String())
}

// writeAtomic writes a file under a hidden name and renames it into place,
// so a polling reader never sees half of it.
func writeAtomic(path, text string) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// The change tests' edits of the manifest directory.

// setExtraEndpoint adds (or removes) the extra endpoint of Service i.
func (w *manifests) setExtraEndpoint(i int, present bool) error {
	return w.writeChunk(i/chunkSize, func(s *workload.Spec) {
		if s.Index == i && present {
			s.Endpoints = append(s.Endpoints, workload.ExtraEndpoint(i))
		}
	})
}

func (w *manifests) extraFile(k int) string {
	return filepath.Join(w.Dir, fmt.Sprintf("extra-%03d.yaml", k))
}

// addService writes the k-th extra Service (a ClusterIP TCP one) in a file of its own.
func (w *manifests) addService(k int) error {
	return writeAtomic(w.extraFile(k), workload.ServiceSpec(workload.ExtraBase+k*10).JSON())
}

// deleteService removes the k-th extra Service.
func (w *manifests) deleteService(k int) error { return os.Remove(w.extraFile(k)) }
