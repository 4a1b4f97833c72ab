// Command nodeagent is the init of a cluster node booted by e2e/cluster in user-mode Linux, and the agent the
// host talks to while it runs.
//
// The node boots on the host's own root file system, read-only through hostfs, so every host package (containerd,
// runc, crun, the CNI plugins, iptables, ipvsadm) is there without an image. As PID 1 it:
//
//  1. (boot) mounts the node's disk (an ext4 image, ubd0) and an overlay with the host root below and the disk
//     above, pivots into it and executes itself again as "node": writes persist on the disk across reboots like
//     on a real node's disk, and the host's files are never written;
//  2. (node) mounts /proc, /sys, cgroup2, a tmpfs /run (empty at every boot, as on a real node), the share (the
//     host directory this binary lives in, writable through hostfs) at /.node/share; copies share/files/ over /
//     (containerd, CNI and kubelet configuration the host wrote); loads kernel modules, sets sysctls, configures
//     the network from share/node.json; starts containerd, imports share/images/*.tar that it does not hold yet,
//     and starts the kubelet; logs go to share/logs/;
//  3. serves, on the node's address, POST /exec (run a command in the node's root namespaces) and POST /poweroff.
//
// It reaps every orphan, as an init must.
package main

import (
	"fmt"
	"os"
)

func main() {
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "node":
		err = nodeMain()
	case os.Getpid() == 1:
		err = boot()
	default:
		err = fmt.Errorf("usage: boot as init of a user-mode Linux node (e2e/cluster)")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodeagent:", err)
		powerOff()
	}
}
