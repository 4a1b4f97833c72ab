package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// boot runs as PID 1 on the host's root (hostfs, read-only): it builds the node's root, an overlay of the host
// root under the node's disk, pivots into it and executes this binary again as "node".
func boot() error {
	self, err := filepath.Abs(os.Args[0])
	if err != nil {
		return err
	}
	steps := []struct {
		what string
		do   func() error
	}{
		{"mount /proc", func() error { return unix.Mount("proc", "/proc", "proc", 0, "") }},
		{"mount a tmpfs on /mnt", func() error { return unix.Mount("tmpfs", "/mnt", "tmpfs", 0, "mode=0755") }},
		{"mount the disk", mountDisk},
		{"load overlay", func() error { return loadModule("kernel/fs/overlayfs/overlay.ko") }},
		{"mount the root overlay", func() error {
			return unix.Mount("overlay", "/mnt/root", "overlay", 0,
				"lowerdir=/,upperdir=/mnt/disk/upper,workdir=/mnt/disk/work")
		}},
		{"move the disk into the new root", func() error {
			for _, d := range []string{"/mnt/root/.node/disk", "/mnt/root/.oldroot"} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					return err
				}
			}
			return unix.Mount("/mnt/disk", "/mnt/root/.node/disk", "", unix.MS_MOVE, "")
		}},
		{"pivot into the new root", func() error {
			if err := unix.Chdir("/mnt/root"); err != nil {
				return err
			}
			if err := unix.PivotRoot(".", ".oldroot"); err != nil {
				return err
			}
			if err := unix.Chroot("."); err != nil {
				return err
			}
			return unix.Chdir("/")
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("boot: %s: %w", s.what, err)
		}
	}
	return unix.Exec(self, []string{self, "node"}, os.Environ())
}

// mountDisk mounts the node's disk at /mnt/disk, with the overlay's upper and work directories on it.
func mountDisk() error {
	for _, d := range []string{"/mnt/disk", "/mnt/root"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount("/dev/ubda", "/mnt/disk", "ext4", 0, ""); err != nil {
		return fmt.Errorf("/dev/ubda (ubd0=, an ext4 image): %w", err)
	}
	for _, d := range []string{"/mnt/disk/upper", "/mnt/disk/work"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// moduleDir is where Debian's user-mode-linux package keeps the kernel's modules.
func moduleDir() string {
	var u unix.Utsname
	_ = unix.Uname(&u)
	return "/usr/lib/uml/modules/" + unix.ByteSliceToString(u.Release[:])
}

// loadModule loads one module file (relative to the module directory) that has no dependencies.
func loadModule(rel string) error {
	f, err := os.Open(filepath.Join(moduleDir(), rel))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && err != unix.EEXIST {
		return err
	}
	return nil
}

// powerOff stops the machine; a user-mode Linux kernel then exits. Used on fatal errors too: a node that cannot
// boot must end, not hang the test waiting for it.
func powerOff() {
	unix.Sync()
	time.Sleep(100 * time.Millisecond) // let the console flush
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	os.Exit(1)
}
