package desired

import (
	"os/exec"
	"strings"
	"testing"
)

// The compute and plan stages are pure: they must not reach the kernel.
func TestPureStagesDoNotImportKernelLibraries(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not found")
	}
	for _, pkg := range []string{"state", "desired", "plan", "rules", "rules/nft", "config", "manifest"} {
		out, err := exec.Command("go", "list", "-deps", "github.com/ipvs-proxy/ipvs-proxy/internal/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, banned := range []string{"github.com/moby/ipvs", "github.com/vishvananda/netlink", "github.com/vishvananda/netns", "os/exec"} {
				if dep == banned || strings.HasPrefix(dep, banned+"/") {
					t.Errorf("internal/%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
