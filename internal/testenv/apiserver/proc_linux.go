package apiserver

import "syscall"

// childAttr makes the kernel kill a child when the process that started it dies, so that a test binary killed
// by a timeout leaves no etcd or kube-apiserver behind. (Pdeathsig fires when the starting OS thread exits;
// the Go runtime does not end threads that have not been locked, so in practice that is the process.)
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
