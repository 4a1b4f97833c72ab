package manifest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func svcDoc(name, ip string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: default}\nspec: {clusterIP: %s, ports: [{port: 80}]}\n", name, ip)
}

func names(o *Objects) []string {
	var out []string
	for _, s := range o.Services {
		out = append(out, s.Name+"="+s.Spec.ClusterIP)
	}
	return out
}

// What `helm template` writes for an empty template ("---" and a comment),
// a bare "---", "null" and "~": empty documents, not errors (an error would
// keep a file's removed Services forever in standalone mode).
func TestEmptyDocumentsAreNotErrors(t *testing.T) {
	for _, doc := range []string{"---\n# Source: chart/templates/empty.yaml\n", "--- # a comment\n", "---\n  # indented\n", "null\n", "~\n", "---\n...\n"} {
		o := Read("h.yaml", []byte(doc+"---\n"+svcDoc("web", "10.96.0.1")))
		if len(o.Errors) != 0 || len(o.Services) != 1 {
			t.Errorf("%q: %d Services, errors %v; want 1 and none", doc, len(o.Services), o.Errors)
		}
	}
}

// Several JSON objects in one document are all read, like kubectl does;
// nothing is dropped silently.
func TestJSONStream(t *testing.T) {
	js := `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 80}]}}
{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b"}, "spec": {"clusterIP": "10.96.0.2", "ports": [{"port": 80}]}}`
	o := Read("s.json", []byte(js))
	if got := strings.Join(names(o), " "); got != "a=10.96.0.1 b=10.96.0.2" || len(o.Errors) != 0 {
		t.Errorf("two JSON objects: %s, errors %v", got, o.Errors)
	}
	bad := Read("s.json", []byte(js+"\n{\"apiVersion\": "))
	if len(bad.Errors) != 1 {
		t.Errorf("a JSON stream with a truncated tail: errors %v, want one", bad.Errors)
	}
}

// A List inside a List is refused: each level used to decode its items
// again, so a small file of nested Lists took gigabytes.
func TestNestedListsAreRefused(t *testing.T) {
	inner := `{"apiVersion": "v1", "kind": "List", "items": [` + strings.TrimSpace(strings.ReplaceAll(svcDoc("a", "10.96.0.1"), "\n", " ")) + `]}`
	_ = inner
	doc := `{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 80}]}}]}]}`
	o := Read("l.json", []byte(doc))
	if len(o.Services) != 0 || len(o.Errors) != 1 || !strings.Contains(o.Errors[0].Error(), "items[0]: kind: a List inside a List is not supported") {
		t.Errorf("nested List: %d Services, errors %v", len(o.Services), o.Errors)
	}
}

// YAML whose aliases repeat a long scalar expands to far more than the
// file: refused before it is converted.
func TestYAMLAliasExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  annotations:\n")
	b.WriteString("    l0: &l0 \"" + strings.Repeat("x", 100_000) + "\"\n")
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&b, "    l%d: &l%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]\n")
	}
	o := Read("bomb.yaml", []byte(b.String()))
	if len(o.Services) != 0 || len(o.Errors) != 1 || !strings.Contains(o.Errors[0].Error(), "aliases expand it to more than") {
		t.Errorf("a 100 KB scalar repeated 1,000 times (100 MB): %d Services, errors %v", len(o.Services), o.Errors)
	}
}

// ReadDir refuses files that are not regular files and reads the rest.
func TestReadDirRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "good.yaml"), []byte(svcDoc("good", "10.96.0.1")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.yaml")); err != nil {
		t.Fatal(err)
	}
	done := make(chan *Objects, 1)
	go func() { o, _ := ReadDir(dir); done <- o }()
	o := <-done
	if len(o.Services) != 1 || len(o.Errors) != 2 {
		t.Fatalf("good file, FIFO, /dev/zero: %d Services, errors %v", len(o.Services), o.Errors)
	}
	for _, e := range o.Errors {
		if !strings.Contains(e.Error(), "not a regular file") {
			t.Errorf("error %q does not say the file is not a regular file", e)
		}
	}
}

// A Service or EndpointSlice defined twice: the first definition (files in
// name order, documents in order) counts, and each later one is an error.
func TestDuplicatesFirstDefinitionWins(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"a.yaml": svcDoc("web", "10.96.0.1") + "---\n" + svcDoc("web", "10.96.0.2"),
		"b.yaml": svcDoc("web", "10.96.0.3"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 { // a map or unstable sort would pick another winner now and then
		o, err := ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(names(o), " "); got != "web=10.96.0.1" || len(o.Errors) != 2 {
			t.Fatalf("duplicates: %s, errors %v; want web=10.96.0.1 and two errors", got, o.Errors)
		}
	}
}
