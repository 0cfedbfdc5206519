package localcp

import "syscall"

// sysProcAttr puts a child in its own process group, so that a terminal's
// SIGINT goes to the caller only, and has the kernel kill the child if the
// caller dies without stopping it. (Pdeathsig follows the OS thread that
// forked the child; the Go runtime keeps its threads unless a goroutine
// exits while locked to one, which this package never does.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
