package cli

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/manifest"
	"github.com/ipvs-proxy/ipvs-proxy/internal/source/standalone"
)

func zapNop() *zap.Logger { return zap.NewNop() }

// hostileFile is one case of the file corpus: files made next to good.yaml
// (which holds goodService), and what reading the directory must say.
type hostileFile struct {
	name string
	// make creates the case's files in dir.
	make func(t *testing.T, dir string)
	// errs are the substrings of the errors, one each, in order ("" none).
	errs []string
	// planned must be in the plan besides the good Service.
	planned []string
}

func writeFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func file(name, text string) func(*testing.T, string) {
	return func(t *testing.T, dir string) { writeFile(t, dir, name, []byte(text)) }
}

func symlink(name, target string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func both(fs ...func(*testing.T, string)) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		for _, f := range fs {
			f(t, dir)
		}
	}
}

func svcText(name, ip string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: default}\nspec: {clusterIP: %s, ports: [{name: http, port: 80}]}\n", name, ip)
}

func svcJSON(name, ip string) string {
	return fmt.Sprintf(`{"apiVersion": "v1", "kind": "Service", "metadata": {"name": %q}, "spec": {"clusterIP": %q, "ports": [{"name": "http", "port": 80}]}}`, name, ip)
}

// laughs is YAML whose aliases nest levels deep, ten to a level, over a
// scalar of size bytes.
func laughs(levels, size int) string {
	var b strings.Builder
	b.WriteString(svcText("bomb", "10.96.0.9"))
	b.WriteString("x0: &x0 \"" + strings.Repeat("x", size) + "\"\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "x%d: &x%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*x%d, ", i-1), 10), ", "))
	}
	return b.String()
}

var hostileFiles = []hostileFile{
	{name: "fifo", make: func(t *testing.T, dir string) {
		if err := syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o644); err != nil {
			t.Fatal(err)
		}
	}, errs: []string{"fifo.yaml: not a regular file (a FIFO)"}},
	{name: "symlink to /dev/zero", make: symlink("zero.yaml", "/dev/zero"), errs: []string{"zero.yaml: not a regular file (a character device)"}},
	{name: "symlink to /dev/null", make: symlink("null.yml", "/dev/null"), errs: []string{"null.yml: not a regular file (a character device)"}},
	{name: "dangling symlink", make: symlink("gone.yaml", "nowhere.yaml"), errs: []string{"gone.yaml: no such file or directory"}},
	{name: "symlink loop", make: both(symlink("loop1.yaml", "loop2.yaml"), symlink("loop2.yaml", "loop1.yaml")),
		errs: []string{"loop1.yaml: too many levels of symbolic links", "loop2.yaml: too many levels of symbolic links"}},
	{name: "symlink to a directory", make: symlink("dir.json", "."), errs: []string{"dir.json: not a regular file (a directory)"}},
	{name: "over 64 MiB (sparse)", make: func(t *testing.T, dir string) {
		p := filepath.Join(dir, "huge.yaml")
		writeFile(t, dir, "huge.yaml", nil)
		if err := os.Truncate(p, manifest.MaxFileSize+1); err != nil {
			t.Fatal(err)
		}
	}, errs: []string{"huge.yaml: too large: 67108865 bytes is over the limit of 67108864"}},
	{name: "billion laughs", make: file("laughs.yaml", laughs(9, 3)), errs: []string{"laughs.yaml: document 1: not valid YAML or JSON: too large: its aliases expand it"}},
	{name: "long scalars repeated by aliases", make: file("scalars.yaml", laughs(3, 100_000)), errs: []string{"scalars.yaml: document 1: not valid YAML or JSON: too large"}},
	{name: "a List inside a List", make: file("lists.json", `{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "List", "items": [`+svcJSON("nested", "10.96.0.9")+`]}]}`),
		errs: []string{"lists.json: document 1: items[0]: kind: a List inside a List is not supported"}},
	{name: "JSON stream: every object read", make: file("stream.json", svcJSON("one", "10.96.0.11")+"\n"+svcJSON("two", "10.96.0.12")),
		planned: []string{"-A -t 10.96.0.11:80", "-A -t 10.96.0.12:80"}},
	{name: "JSON stream cut off", make: file("cut.json", svcJSON("one", "10.96.0.11")+"\n"+`{"apiVersion": "v1", "kind": "Serv`),
		errs: []string{"cut.json: document 1: not valid YAML or JSON"}},
	{name: "two flow mappings in one document", make: file("flow.yaml", "{apiVersion: v1, kind: Service, metadata: {name: one}, spec: {clusterIP: 10.96.0.11, ports: [{port: 80}]}} {kind: Service}\n"),
		errs: []string{"flow.yaml: document 1: not valid YAML or JSON: more after the end of the document"}},
	{name: "helm template empty documents", make: file("helm.yaml", "---\n# Source: chart/templates/empty.yaml\n---\n# Source: chart/templates/svc.yaml\n"+svcText("helm", "10.96.0.13")),
		planned: []string{"-A -t 10.96.0.13:80"}},
	{name: "null and ~ documents", make: file("nulls.yaml", "null\n---\n~\n---\n...\n"), errs: nil},
	{name: "binary garbage", make: func(t *testing.T, dir string) {
		b := make([]byte, 4096)
		rand.New(rand.NewSource(1)).Read(b)
		writeFile(t, dir, "garbage.yaml", b)
	}, errs: []string{"garbage.yaml: document 1: not valid YAML or JSON"}},
	{name: "NUL bytes", make: file("nul.yaml", "apiVersion: v1\x00\x00kind: Service\n"), errs: []string{"nul.yaml: document 1: not valid YAML or JSON"}},
	{name: "20,000 nested YAML sequences", make: file("deep.yaml", strings.Repeat("[", 20000)), errs: []string{"deep.yaml: document 1: not valid YAML or JSON"}},
	{name: "20,000 nested JSON objects", make: file("deep.json", strings.Repeat(`{"a":`, 20000)), errs: []string{"deep.json: document 1: not valid YAML or JSON"}},
	{name: "tabs for indentation", make: file("tabs.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n\tname: tabs\n"), errs: []string{"tabs.yaml: document 1: not valid YAML or JSON"}},
	{name: "a key twice", make: file("dupkey.yaml", "apiVersion: v1\nkind: Service\nkind: Service\nmetadata: {name: dup}\n"), errs: []string{"dupkey.yaml: document 1: not valid YAML or JSON"}},
	{name: "a key twice in JSON", make: file("dupkey.json", `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dup"}, "spec": {"clusterIP": "10.96.0.9", "clusterIP": "10.96.0.10", "ports": [{"port": 80}]}}`),
		errs: []string{`dupkey.json: document 1: Service default/dup: duplicate field "spec.clusterIP"`}},
	{name: "CRLF line ends", make: file("crlf.yaml", strings.ReplaceAll(svcText("crlf", "10.96.0.14"), "\n", "\r\n")), planned: []string{"-A -t 10.96.0.14:80"}},
	{name: "cut off mid-document", make: file("cut.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: cut, namespace: def"), errs: []string{"cut.yaml: document 1: not valid YAML or JSON"}},
	{name: "a 256 KB annotation", make: file("long.yaml", strings.Replace(svcText("long", "10.96.0.15"), "namespace: default}", "namespace: default, annotations: {x: \""+strings.Repeat("y", 1<<18)+"\"}}", 1)),
		planned: []string{"-A -t 10.96.0.15:80"}},
	{name: "10,000 empty documents", make: file("empties.yaml", strings.Repeat("---\n", 10000)+svcText("last", "10.96.0.16")), planned: []string{"-A -t 10.96.0.16:80"}},
	{name: "a Service defined in two files", make: both(file("a-dup.yaml", svcText("dup", "10.96.0.17")), file("z-dup.yaml", svcText("dup", "10.96.0.18"))),
		errs: []string{"Service default/dup: defined more than once; the first definition (in file name order) is used"}, planned: []string{"-A -t 10.96.0.17:80"}},
	{name: "a ServiceList", make: file("list.yaml", "apiVersion: v1\nkind: ServiceList\nitems:\n- "+strings.ReplaceAll(strings.TrimSpace(svcText("listed", "10.96.0.19")), "\n", "\n  ")+"\n"),
		planned: []string{"-A -t 10.96.0.19:80"}},
	{name: "a hidden directory (a ConfigMap mount's internals)", make: func(t *testing.T, dir string) {
		if err := os.Mkdir(filepath.Join(dir, "..data"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "..data"), "hidden.yaml", []byte(svcText("hidden", "10.96.0.20")))
	}},
}

// TestHostileFilesCorpus: each file next to a good one, read by plan and by
// the daemon's standalone source: it gives exactly the errors expected
// (naming the file), neither blocks nor crashes, and the good Service (and
// whatever else the case must plan) is still planned and delivered.
func TestHostileFilesCorpus(t *testing.T) {
	if len(hostileFiles) < 25 {
		t.Fatalf("only %d file cases", len(hostileFiles))
	}
	node := desired.Node{Name: "node1", Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}
	for _, c := range hostileFiles {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "good.yaml", []byte(goodService))
			c.make(t, dir)
			objs, err := manifest.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			cfg := config.Default()
			cfg.APIChecks = true
			var out bytes.Buffer
			errs := WritePlan(&out, cfg, node, objs)
			if len(errs) != len(c.errs) {
				t.Fatalf("%d errors, want %d: %v", len(errs), len(c.errs), errs)
			}
			for i, want := range c.errs {
				if !strings.Contains(errs[i].Error(), want) {
					t.Errorf("error %d: %q does not say %q", i, errs[i], want)
				}
			}
			for _, want := range append([]string{"-A -t 10.96.100.1:80 -s rr"}, c.planned...) {
				if !strings.Contains(out.String(), want) {
					t.Errorf("plan lacks %q:\n%s", want, out.String())
				}
			}
			sink := &collector{services: map[string]*v1Service{}, slices: map[string]*v1Slice{}, synced: make(chan struct{})}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- standalone.New(standalone.Config{Dir: dir, Poll: 10 * time.Millisecond}).Run(ctx, sink)
			}()
			defer cancel()
			select {
			case <-sink.synced:
			case <-time.After(20 * time.Second): // only turns a hang into a failure
				t.Fatal("the daemon's source never reported itself synced")
			}
			cancel()
			<-done
			if sink.services["default/target"] == nil {
				t.Error("the daemon's source did not deliver the good Service")
			}
		})
	}
}

// TestHostileConfigFiles: the --config file read by the daemon and by plan
// is refused with an error naming why, at once, whatever it is.
func TestHostileConfigFiles(t *testing.T) {
	cases := []struct {
		name string
		make func(t *testing.T, dir string)
		want string
	}{
		{"fifo", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "config.yaml"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file (a FIFO)"},
		{"symlink to /dev/zero", symlink("config.yaml", "/dev/zero"), "not a regular file (a character device)"},
		{"dangling symlink", symlink("config.yaml", "gone.yaml"), "no such file or directory"},
		{"a directory", func(t *testing.T, dir string) {
			if err := os.Mkdir(filepath.Join(dir, "config.yaml"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file (a directory)"},
		{"over 1 MiB (sparse)", func(t *testing.T, dir string) {
			writeFile(t, dir, "config.yaml", nil)
			if err := os.Truncate(filepath.Join(dir, "config.yaml"), config.MaxFileSize+1); err != nil {
				t.Fatal(err)
			}
		}, "over the limit of 1048576"},
		{"billion laughs", file("config.yaml", "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n"+
			strings.SplitN(laughs(9, 3), "\n", 5)[4]), "aliases expand it"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.make(t, dir)
			path := filepath.Join(dir, "config.yaml")
			if _, err := loadConfig(path, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("plan's config: %v, want an error saying %q", err, c.want)
			}
			f, err := parseRunFlags([]string{"--config", path}, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := loadRunConfig(f, zapNop()); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("the daemon's config: %v, want an error saying %q", err, c.want)
			}
		})
	}
}
