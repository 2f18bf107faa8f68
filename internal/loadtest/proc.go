package loadtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat.
// It is 100 on every Linux architecture Go supports.
const clockTicks = 100

// RSS returns the resident set size of process pid in KiB (VmRSS).
func RSS(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// CPUTime returns the user plus system CPU time process pid has used.
func CPUTime(pid int) (time.Duration, error) {
	u, s, err := CPUTimes(pid)
	return u + s, err
}

// CPUTimes returns the user and the system (kernel) CPU time process pid
// has used. On loopback the kernel half includes delivering what the
// process writes into the reader's socket, which a real network card
// would partly take over.
func CPUTimes(pid int) (user, sys time.Duration, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name may contain spaces and parentheses; the fields
	// we need follow its last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state(3) ... utime is field 14, stime field 15 of stat.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bad times in /proc/%d/stat", pid)
	}
	return time.Duration(ut) * time.Second / clockTicks, time.Duration(st) * time.Second / clockTicks, nil
}

// RSSSamples is a series of RSS readings.
type RSSSamples struct {
	Min, Last int64 // KiB
	N         int
}

// SampleRSS reads the RSS of pid n times, interval apart.
func SampleRSS(pid, n int, interval time.Duration) (RSSSamples, error) {
	var s RSSSamples
	for i := range n {
		if i > 0 {
			time.Sleep(interval)
		}
		v, err := RSS(pid)
		if err != nil {
			return s, err
		}
		if s.N == 0 || v < s.Min {
			s.Min = v
		}
		s.Last = v
		s.N++
	}
	return s, nil
}

// ProcUsage is the memory and CPU time of a group of processes: the
// processes of one kind (gateway, service, database) in a fleet.
type ProcUsage struct {
	// Name is what the processes are, from their command lines, such as
	// "ambrosia gateway" or "postgres".
	Name  string `json:"name"`
	Procs int    `json:"procs"`
	// PSSKiB is their proportional set size: the resident memory with
	// each shared page divided among the processes that map it, so that
	// PostgreSQL's shared buffers count once however many backends map
	// them.
	PSSKiB int64         `json:"pss_kib"`
	CPU    time.Duration `json:"cpu_ns"`
}

// SampleProcs measures the processes roots and all their descendants
// (PostgreSQL's backends are its postmaster's children), grouped by
// name in the order the names first appear.
func SampleProcs(roots []int) ([]ProcUsage, error) {
	parent := map[int]int{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, err := ppid(pid); err == nil {
			parent[pid] = pp
		}
	}
	var out []ProcUsage
	index := map[string]int{}
	for _, root := range roots {
		name, err := procName(root)
		if err != nil {
			return nil, fmt.Errorf("process %d: %w", root, err)
		}
		i, ok := index[name]
		if !ok {
			i = len(out)
			index[name] = i
			out = append(out, ProcUsage{Name: name})
		}
		for pid := range parent {
			if !descends(parent, pid, root) {
				continue
			}
			pss, err := PSS(pid)
			if err != nil {
				continue // it ended meanwhile
			}
			cpu, _ := CPUTime(pid)
			out[i].Procs++
			out[i].PSSKiB += pss
			out[i].CPU += cpu
		}
	}
	return out, nil
}

// descends reports whether pid is root or one of its descendants.
func descends(parent map[int]int, pid, root int) bool {
	for range 64 {
		if pid == root {
			return true
		}
		pp, ok := parent[pid]
		if !ok || pp == 0 || pp == pid {
			return false
		}
		pid = pp
	}
	return false
}

func ppid(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	return strconv.Atoi(f[1])
}

// procName names a process by its program and, for a program with
// subcommands such as ambrosia, the subcommand: "ambrosia gateway",
// "ambrosia service sm", "postgres".
func procName(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return "", err
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if len(args) == 0 || args[0] == "" {
		return "", errors.New("no command line")
	}
	name := filepath.Base(args[0])
	if fs := strings.Fields(name); len(fs) > 1 {
		// A process that rewrote its title, as PostgreSQL's do.
		name = strings.TrimSuffix(fs[0], ":")
	}
	for _, a := range args[1:] {
		if strings.HasPrefix(a, "-") || len(strings.Fields(name)) >= 3 {
			break
		}
		name += " " + a
	}
	return name, nil
}

// PSS returns the proportional set size of process pid in KiB.
func PSS(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Pss:"); ok {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no Pss for pid %d", pid)
}
