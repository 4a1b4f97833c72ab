package apiserver

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// RequireEnv is the environment variable that, when not empty, makes SkipIfUnavailable fail instead of skip:
// CI, which builds the binaries first, sets it so that a broken build cannot pass as skipped tests.
const RequireEnv = "IPVS_PROXY_REQUIRE_K8S"

// Available returns nil when binDir ("" for DefaultBinDir) holds executable kube-apiserver and etcd binaries,
// else an error that says how to build them.
func Available(binDir string) error {
	if binDir == "" {
		dir, err := DefaultBinDir()
		if err != nil {
			return err
		}
		binDir = dir
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		fi, err := os.Stat(filepath.Join(binDir, name))
		if err != nil || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("no %s binary in %s: build it with scripts/k8s/build.sh (5-8 minutes the first time)",
				name, binDir)
		}
	}
	return nil
}

// SkipIfUnavailable skips the test when the binaries are not built, unless RequireEnv is set: then it fails.
func SkipIfUnavailable(t testing.TB) {
	t.Helper()
	if err := Available(""); err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%s is set: %v", RequireEnv, err)
		}
		t.Skip(err)
	}
}

// Require fails the test when the binaries are not built.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(""); err != nil {
		t.Fatal(err)
	}
}

// StartForTest skips or fails as SkipIfUnavailable does, starts a server with opts and stops it when the
// test ends.
func StartForTest(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.BinDir == "" {
		SkipIfUnavailable(t)
	}
	s, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}
