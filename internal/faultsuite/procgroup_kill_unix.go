//go:build unix

package faultsuite

import (
	"errors"
	"os"
	"syscall"
)

// killGroup sends SIGKILL to the process group p leads.
func killGroup(p *os.Process) error {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}
