package cli

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/manifest"
)

// goodService is read with every bad manifest: it must still be programmed.
const goodService = `apiVersion: v1
kind: Service
metadata: {name: target, namespace: default}
spec:
  clusterIP: 10.96.100.1
  ports:
  - {name: http, port: 80}
`

// TestBadInputCorpus: every case in testdata/bad (malformed Services,
// EndpointSlices, Endpoints, manifest files and KubeProxyConfiguration files)
// yields exactly one error that names the object and the field; a good
// Service read in the same pass is still programmed. The error texts are
// golden files next to the cases (go test -update rewrites them).
func TestBadInputCorpus(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) < 90 {
		t.Fatalf("only %d bad-input cases", len(files))
	}
	node := desired.Node{Name: "node1", Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var errs []string
			if strings.HasPrefix(name, "cfg-") {
				_, _, err := config.Parse(data)
				if err == nil {
					t.Fatal("the configuration was accepted")
				}
				errs = strings.Split(err.Error(), "\n")
			} else {
				objs := manifest.Read(name+".yaml", append([]byte(goodService+"---\n"), data...))
				var out bytes.Buffer
				cfg := config.Default()
				cfg.APIChecks = true // as plan and standalone mode: nobody validated the manifests
				for _, e := range WritePlan(&out, cfg, node, objs) {
					errs = append(errs, e.Error())
				}
				if !strings.Contains(out.String(), "-A -t 10.96.100.1:80 -s rr") {
					t.Errorf("the good Service was not programmed:\n%s", out.String())
				}
			}
			if len(errs) != 1 {
				t.Fatalf("want exactly one error, got %d:\n%s", len(errs), strings.Join(errs, "\n"))
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			got := errs[0] + "\n"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil && errors.Is(err, os.ErrNotExist) {
				t.Fatalf("no %s (go test -update)", golden)
			}
			if got != string(want) {
				t.Errorf("error changed:\n got: %s want: %s", got, want)
			}
		})
	}
}
