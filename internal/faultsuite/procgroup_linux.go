package faultsuite

import "syscall"

// procAttr starts a child in its own process group (so that killGroup takes
// its children too), and has the kernel SIGKILL it should the suite itself
// die (a test binary killed by its timeout leaves no servers behind).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
