//go:build !unix

package faultsuite

import (
	"os"
	"syscall"
)

// procAttr: process groups are a Unix notion; the suite's faults (SIGKILL)
// are too, and it is meant to run on Linux.
func procAttr() *syscall.SysProcAttr { return nil }

// killGroup kills the process itself.
func killGroup(p *os.Process) error { return p.Kill() }
