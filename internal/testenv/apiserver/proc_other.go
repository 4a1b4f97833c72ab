//go:build !linux

package apiserver

import "syscall"

// childAttr has nothing to add where there is no Pdeathsig; Stop still ends the children.
func childAttr() *syscall.SysProcAttr {
	return nil
}
