//go:build !linux

package localcp

import "syscall"

// sysProcAttr puts a child in its own process group, so that a terminal's
// SIGINT goes to the caller only.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
