package pgtest

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sysProcAttr runs a server process as cred and has the kernel send it
// SIGQUIT, PostgreSQL's immediate shutdown, if the test process dies
// without stopping it, so that no server outlives its tests.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
}

// CPUTime returns the CPU time (user and system) the server has used:
// the postmaster's and that of the processes it runs now (backends,
// writers), read from /proc. Backends that have exited are not counted,
// so a benchmark measures while its connections are open.
func (c *Cluster) CPUTime() (time.Duration, error) {
	if c.cmd == nil || c.cmd.Process == nil {
		return 0, errors.New("pgtest: server not running")
	}
	root := c.cmd.Process.Pid
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var ticks int64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// The fields after the command name, which may hold spaces:
		// state ppid ... utime (14th of stat) stime (15th).
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if pid != root && ppid != root {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += ut + st
	}
	// USER_HZ is 100 on every Linux architecture Go supports.
	return time.Duration(ticks) * time.Second / 100, nil
}
