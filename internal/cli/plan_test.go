package cli

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/manifest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// A plan scenario is testdata/plan/NAME.yaml: manifests, optionally a
// KubeProxyConfiguration document, and header comments naming the node:
//
//	# node-name: node1
//	# node-ip: 10.0.0.1,192.168.1.1
//	# node-labels: topology.kubernetes.io/zone=a
//
// Its golden file NAME.golden holds the plan output, then the errors.
func TestPlanGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/plan/*.yaml")
	if len(files) == 0 {
		t.Fatal("no scenarios")
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := runScenario(t, data)
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("plan differs from %s (run go test -update to accept):\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

func runScenario(t *testing.T, data []byte) string {
	t.Helper()
	node := desired.Node{Name: "node1"}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "# "), ": ")
		if !ok || !strings.HasPrefix(sc.Text(), "# ") {
			continue
		}
		switch key {
		case "node-name":
			node.Name = val
		case "node-ip":
			for _, s := range strings.Split(val, ",") {
				node.Addresses = append(node.Addresses, netip.MustParseAddr(strings.TrimSpace(s)))
			}
		case "node-labels":
			node.Labels = map[string]string{}
			for _, kv := range strings.Split(val, ",") {
				k, v, _ := strings.Cut(kv, "=")
				node.Labels[k] = v
			}
		}
	}
	if len(node.Addresses) == 0 {
		node.Addresses = []netip.Addr{netip.MustParseAddr("10.0.0.1")}
	}
	node.PrimaryAddresses = node.Addresses
	cfg := config.Default()
	var manifests [][]byte
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		if bytes.Contains(doc, []byte("kind: KubeProxyConfiguration")) {
			c, _, err := config.Parse(doc)
			if err != nil {
				t.Fatalf("scenario config: %v", err)
			}
			cfg = c
			continue
		}
		manifests = append(manifests, doc)
	}
	cfg.APIChecks = true // as plan does
	objs := manifest.Read("scenario", bytes.Join(manifests, []byte("\n---\n")))
	var out bytes.Buffer
	errs := WritePlan(&out, cfg, node, objs)
	if len(errs) > 0 || len(objs.Warnings) > 0 {
		out.WriteString("\n# errors\n")
		for _, e := range errs {
			fmt.Fprintf(&out, "%v\n", e)
		}
		for _, w := range objs.Warnings {
			fmt.Fprintf(&out, "warning: %s\n", w)
		}
	}
	return out.String()
}
