// Package datadir guards a data directory: the one server that uses it
// holds a lock on a file in it, so that a second server started on the
// same directory refuses to start (and says which process holds it), and
// the commands that work beside a server (ambrosia user, backup, restore)
// can tell whether one runs.
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// LockFile is the name of the lock file in a data directory.
const LockFile = "ambrosia.lock"

// ErrLocked is returned by Lock when another process holds the directory.
var ErrLocked = errors.New("data directory in use")

// InUseError says which process holds a data directory.
type InUseError struct {
	Dir string
	PID int // 0 when the lock file does not say
}

func (e *InUseError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = "process " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("data directory %s is in use by %s (it holds %s): stop that server first, or give this one another data directory", e.Dir, who, filepath.Join(e.Dir, LockFile))
}

func (e *InUseError) Unwrap() error { return ErrLocked }

// Lock is a held lock on a data directory.
type Lock struct {
	f *os.File
}

// Acquire locks dir for this process, creating dir (mode 0700) and the
// lock file if needed, and writes this process's id into the file. It
// returns an *InUseError when another process holds the lock. The lock
// ends with Release or with the process.
func Acquire(dir string) (*Lock, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(abs, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	// A command that only looks (Holder) takes the lock for an instant:
	// try again before believing that a server holds it.
	for i := 0; ; i++ {
		err = tryLock(f, true)
		if err == nil || !errors.Is(err, errWouldBlock) || i == 5 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, &InUseError{Dir: abs, PID: readPID(filepath.Join(abs, LockFile))}
		}
		return nil, fmt.Errorf("lock %s: %w", filepath.Join(abs, LockFile), err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Release releases the lock. The file stays: removing it would race with
// a process opening it.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := l.f.Close()
	l.f = nil
	return err
}

// Holder reports whether a process holds dir's lock, and which (0 when
// the file does not say). A directory without a lock file has no holder.
func Holder(dir string) (pid int, held bool, err error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	err = tryLock(f, false)
	if errors.Is(err, errWouldBlock) {
		return readPID(path), true, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("lock %s: %w", path, err)
	}
	unlock(f)
	return 0, false, nil
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n <= 0 {
		return 0
	}
	return n
}
