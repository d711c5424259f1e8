//go:build unix && !linux

package faultsuite

import "syscall"

// procAttr starts a child in its own process group, so that killGroup takes
// its children too.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
