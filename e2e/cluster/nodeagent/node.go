package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/cluster/nodeapi"
)

// shareDir is where the host's share directory is mounted, writable, in the node.
const shareDir = "/.node/share"

// nodeMain runs in the node's root: it sets the node up, starts containerd and the kubelet and serves the API.
func nodeMain() error {
	// The kernel starts init with an almost empty environment.
	os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	os.Setenv("HOME", "/root")
	self, err := filepath.Abs(os.Args[0])
	if err != nil {
		return err
	}
	if err := mountSystem(filepath.Dir(self)); err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(shareDir, "logs", "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	log.SetOutput(logFile)
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.Printf("=== boot, node stage at %s", uptime())

	cfg, err := readConfig()
	if err != nil {
		return err
	}
	r := newReaper()
	go r.run()
	if err := setup(cfg, r); err != nil {
		log.Printf("setup: %v", err)
		return err
	}
	svc := &services{cfg: cfg, reaper: r}
	if err := svc.start(); err != nil {
		log.Printf("services: %v", err)
		return err
	}
	return serve(cfg, r, svc)
}

// mountSystem mounts what a booted system has, drops the old root, and mounts the share.
func mountSystem(hostShare string) error {
	mounts := []struct{ source, target, fstype, data string }{
		{"proc", "/proc", "proc", ""},
		{"sysfs", "/sys", "sysfs", ""},
		{"devtmpfs", "/dev", "devtmpfs", ""},
		{"devpts", "/dev/pts", "devpts", ""},
		{"tmpfs", "/dev/shm", "tmpfs", ""},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", ""},
		{"tmpfs", "/run", "tmpfs", "mode=0755"},
		{"tmpfs", "/tmp", "tmpfs", "mode=1777"},
		{"none", shareDir, "hostfs", hostShare},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.source, m.target, m.fstype, 0, m.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	_ = unix.Unmount("/.oldroot", unix.MNT_DETACH)
	// The node's state lives on its disk, not in the overlay: containerd's overlay snapshots cannot have an
	// overlay as their upper layer.
	for _, d := range []string{"containerd", "kubelet"} {
		src, dst := "/.node/disk/"+d, "/var/lib/"+d
		for _, p := range []string{src, dst} {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		}
		if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", dst, err)
		}
	}
	return os.MkdirAll(filepath.Join(shareDir, "logs"), 0o755)
}

func readConfig() (*nodeapi.Config, error) {
	data, err := os.ReadFile(filepath.Join(shareDir, nodeapi.ConfigFile))
	if err != nil {
		return nil, err
	}
	var cfg nodeapi.Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", nodeapi.ConfigFile, err)
	}
	return &cfg, nil
}

// setup does what a node's boot does before its services: host name, files, modules, sysctls, network.
func setup(cfg *nodeapi.Config, r *reaper) error {
	if err := unix.Sethostname([]byte(cfg.Name)); err != nil {
		return err
	}
	if err := copyTree(filepath.Join(shareDir, "files"), "/"); err != nil {
		return fmt.Errorf("copy share/files: %w", err)
	}
	// modprobe looks in /lib/modules/RELEASE; the package keeps them elsewhere.
	release := filepath.Base(moduleDir())
	if err := os.MkdirAll("/usr/lib/modules", 0o755); err != nil {
		return err
	}
	if _, err := os.Lstat("/usr/lib/modules/" + release); err != nil {
		if err := os.Symlink(moduleDir(), "/usr/lib/modules/"+release); err != nil {
			return err
		}
	}
	if err := fakeCPUInfo(cfg.CPUMHz); err != nil {
		return err
	}
	// A module this kernel lacks is logged, not fatal: whatever needs it will say so.
	if res := r.exec(append([]string{"modprobe", "-a"}, cfg.Modules...), "", time.Minute); res.ExitCode != 0 {
		log.Printf("modprobe: exit %d: %s", res.ExitCode, res.Stderr)
	}
	var steps [][]string
	for k, v := range cfg.Sysctls {
		steps = append(steps, []string{"sysctl", "-qw", k + "=" + v})
	}
	steps = append(steps,
		// The user-mode Linux kernel has nf_tables but not its NAT chains (no nft_chain_nat), so the node's
		// iptables is legacy, as on distributions without nftables: the kubelet leaves its hint chains there and
		// containers that detect the node's backend (ipvs-proxy, kube-proxy's iptables-wrapper) follow it. The
		// root is this node's overlay: the host's alternatives stay as they are.
		[]string{"update-alternatives", "--quiet", "--set", "iptables", "/usr/sbin/iptables-legacy"},
		[]string{"update-alternatives", "--quiet", "--set", "ip6tables", "/usr/sbin/ip6tables-legacy"},
		[]string{"ip", "link", "set", "lo", "up"},
		[]string{"ip", "addr", "add", cfg.Address, "dev", "vec0"},
		[]string{"ip", "link", "set", "vec0", "up"},
		[]string{"ip", "route", "add", "default", "via", cfg.Gateway},
	)
	for _, argv := range steps {
		res := r.exec(argv, "", 30*time.Second)
		if res.ExitCode != 0 {
			return fmt.Errorf("%s: exit %d: %s%s", strings.Join(argv, " "), res.ExitCode, res.Stderr, res.Error)
		}
	}
	log.Printf("set up at %s", uptime())
	return nil
}

// fakeCPUInfo bind-mounts a /proc/cpuinfo with a "cpu MHz" line over the kernel's.
func fakeCPUInfo(mhz string) error {
	if mhz == "" {
		return nil
	}
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return err
	}
	if strings.Contains(string(data), "cpu MHz") {
		return nil
	}
	path := "/run/cpuinfo"
	if err := os.WriteFile(path, append(data, []byte("cpu MHz\t\t: "+mhz+"\n")...), 0o444); err != nil {
		return err
	}
	return unix.Mount(path, "/proc/cpuinfo", "", unix.MS_BIND, "")
}

// copyTree copies every file under src to the same path under dst, creating directories.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == src {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
}

// uptime is the node's uptime, for the log: it tells boot phases apart.
func uptime() string {
	data, _ := os.ReadFile("/proc/uptime")
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return "?"
	}
	return f[0] + "s"
}

// listenAddress is the node address without its prefix, and the agent's port.
func listenAddress(cfg *nodeapi.Config) string {
	ip, _, err := net.ParseCIDR(cfg.Address)
	if err != nil {
		return fmt.Sprintf(":%d", nodeapi.Port)
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(nodeapi.Port))
}
