package manifest

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// ListFiles returns the manifest files under dir, recursively, in name
// order: the order in which definitions count (see KeepFirst). Directories
// whose names start with a dot are skipped (a Kubernetes ConfigMap mount
// keeps its internals in ..data and ..2024_...). A subdirectory that cannot
// be read is returned in unreadable with its error: its files are unknown,
// not gone. Only an unreadable dir itself is an error.
func ListFiles(dir string) (files []string, unreadable map[string]error, err error) {
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			if unreadable == nil {
				unreadable = map[string]error{}
			}
			unreadable[path] = err
			return nil
		}
		if d.IsDir() {
			if path != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if IsManifestFile(path) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(files)
	return files, unreadable, nil
}

// ReadDir reads every manifest file under dir, each exactly as ReadFile
// reads it (the standalone source reads them one by one too), and merges
// them with KeepFirst. Unreadable files and subdirectories are errors in
// Objects.Errors; the rest is still read.
func ReadDir(dir string) (*Objects, error) {
	files, unreadable, err := ListFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("read manifest directory: %w", err)
	}
	all := &Objects{}
	for _, p := range sortedKeys(unreadable) {
		all.Errors = append(all.Errors, fmt.Errorf("%s: %w", p, unreadable[p]))
	}
	for _, f := range files {
		objs, err := ReadFile(f)
		if err != nil {
			all.Errors = append(all.Errors, err)
			continue
		}
		all.Services = append(all.Services, objs.Services...)
		all.EndpointSlices = append(all.EndpointSlices, objs.EndpointSlices...)
		all.Errors = append(all.Errors, objs.Errors...)
		all.Warnings = append(all.Warnings, objs.Warnings...)
	}
	all.KeepFirst()
	return all, nil
}

// KeepFirst applies the rule for objects defined more than once (same
// kind, namespace and name): the first definition counts, files in name
// order and documents in file order; each later one is an error. The
// standalone source follows the same rule, so `plan` and the daemon pick
// the same object.
func (o *Objects) KeepFirst() {
	seen := map[string]bool{}
	o.Services = keepFirst(o.Services, seen, "Service", func(s *v1.Service) string { return s.Namespace + "/" + s.Name }, &o.Errors)
	o.EndpointSlices = keepFirst(o.EndpointSlices, seen, "EndpointSlice", func(s *discovery.EndpointSlice) string { return s.Namespace + "/" + s.Name }, &o.Errors)
}

func keepFirst[T any](objs []T, seen map[string]bool, kind string, key func(T) string, errs *[]error) []T {
	out := objs[:0]
	for _, obj := range objs {
		k := kind + " " + key(obj)
		if seen[k] {
			*errs = append(*errs, fmt.Errorf("%s %s: defined more than once; the first definition (in file name order) is used", kind, key(obj)))
			continue
		}
		seen[k] = true
		out = append(out, obj)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
