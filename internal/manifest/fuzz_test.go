package manifest

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzRead: no input makes the manifest reader panic, and every object it
// returns has a name and a namespace.
func FuzzRead(f *testing.F) {
	for _, dir := range []string{"../cli/testdata/bad/*.yaml", "../cli/testdata/plan/*.yaml"} {
		seeds, _ := filepath.Glob(dir)
		for _, s := range seeds {
			if b, err := os.ReadFile(s); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs := Read("fuzz", data)
		for _, s := range objs.Services {
			if s.Name == "" || s.Namespace == "" {
				t.Fatalf("Service without name or namespace: %+v", s.ObjectMeta)
			}
		}
		for _, es := range objs.EndpointSlices {
			if es.Name == "" || es.Namespace == "" {
				t.Fatalf("EndpointSlice without name or namespace: %+v", es.ObjectMeta)
			}
		}
	})
}
