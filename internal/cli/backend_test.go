package cli

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

func TestChooseRulesBackend(t *testing.T) {
	cfg := config.Default()
	fresh := fake.New(netip.MustParseAddr("10.0.0.1"))
	if b, why := chooseRulesBackend(fresh.Interfaces(), cfg); b != state.BackendNFTables || !strings.Contains(why, "IPv4") {
		t.Errorf("fresh node: %s (%s), want nftables", b, why)
	}
	if fresh.NFTables.Dump(state.IPv4) != "" {
		t.Error("choosing wrote the table: --check must not")
	}

	kubeProxy := fake.New(netip.MustParseAddr("10.0.0.1"))
	if err := kubeProxy.IPTables.Restore(state.IPv4, "*nat\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n"); err != nil {
		t.Fatal(err)
	}
	if b, why := chooseRulesBackend(kubeProxy.Interfaces(), cfg); b != state.BackendIPTables || !strings.Contains(why, "nat/KUBE-SERVICES") {
		t.Errorf("node with kube-proxy's chains: %s (%s), want iptables naming the chain", b, why)
	}

	noNFT := fresh.Interfaces()
	noNFT.NFTables = nil
	if b, why := chooseRulesBackend(noNFT, cfg); b != state.BackendIPTables || !strings.Contains(why, "nft") {
		t.Errorf("node without nft: %s (%s), want iptables", b, why)
	}
}

func TestRulesBackendFlag(t *testing.T) {
	f, err := parseRunFlags([]string{"--rules-backend", "nftables"}, nil)
	if err != nil || f.rulesBackend != state.BackendNFTables {
		t.Fatalf("--rules-backend nftables: %v %v", f, err)
	}
	if _, err := parseRunFlags([]string{"--rules-backend", "ebpf"}, &strings.Builder{}); err == nil {
		t.Error("--rules-backend ebpf accepted")
	}
}

// TestReloadKeepsTheChosenRulesBackend: with ipvsProxy.rulesBackend auto,
// the daemon chooses at startup (nftables on a fresh node); a file that
// still says auto is applied in place on that backend; a file that asks for
// another backend stops the daemon for a restart.
func TestReloadKeepsTheChosenRulesBackend(t *testing.T) {
	manifests := t.TempDir()
	if err := os.WriteFile(filepath.Join(manifests, "web.yaml"), []byte(reloadService), 0o644); err != nil {
		t.Fatal(err)
	}
	metricsAddr := freeAddr(t)
	cm := newConfigMapDir(t, reloadConfig(metricsAddr, "ipvsProxy: {rulesBackend: auto}\n"))
	f, err := parseRunFlags([]string{"--manifests", manifests, "--node-name", "node-1", "--config", cm.path(), "--manifests-poll-period", "50ms"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	fk := fake.New(netip.MustParseAddr("10.0.0.1"))
	open := func(*zap.Logger) (kernel.Kernel, func(), error) { return fk.Interfaces(), func() {}, nil }
	done := make(chan error, 1)
	go func() { done <- run(context.Background(), f, zap.NewNop(), open) }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("nftables chosen and programmed", func() bool {
		return strings.Contains(fk.NFTables.Dump(state.IPv4), "cluster-ip { 10.96.0.10 . tcp . 80 }")
	})
	cm.update(reloadConfig(metricsAddr, "ipvsProxy: {rulesBackend: auto}\nipvs: {scheduler: lc}\n"))
	waitFor("scheduler lc applied in place", func() bool { return strings.Contains(fk.IPVS.Save(), "-A -t 10.96.0.10:80 -s lc") })
	if save, _ := fk.IPTables.Save(state.IPv4); strings.Contains(save, "KUBE-") || fk.NFTables.Dump(state.IPv4) == "" {
		t.Fatalf("a reload that kept auto changed the rules backend:\n%s", save)
	}
	cm.update(reloadConfig(metricsAddr, "ipvsProxy: {rulesBackend: iptables}\nipvs: {scheduler: lc}\n"))
	select {
	case err := <-done:
		if !errors.Is(err, errRestart) {
			t.Fatalf("another rules backend: %v, want errRestart", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("another rules backend did not stop the daemon")
	}
}
