//go:build unix && !linux

package pgtest

import (
	"errors"
	"syscall"
	"time"
)

// sysProcAttr runs a server process as cred.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred}
}

// CPUTime is not measured on this system.
func (c *Cluster) CPUTime() (time.Duration, error) {
	return 0, errors.New("pgtest: server CPU time is read on Linux only")
}
