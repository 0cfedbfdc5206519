package localcp

import "syscall"

// sysProcAttr puts a child in its own process group, so that a terminal's
// SIGINT goes to the caller only, and has the kernel kill the child if the
// caller dies without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
