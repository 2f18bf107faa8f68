package datadir

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestLock(t *testing.T) {
	dir := t.TempDir()
	if _, held, err := Holder(dir); held || err != nil {
		t.Fatalf("empty directory: held %v, %v", held, err)
	}
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	pid, held, err := Holder(dir)
	if !held || err != nil || pid != os.Getpid() {
		t.Fatalf("Holder = %d, %v, %v; want this process", pid, held, err)
	}
	// flock locks belong to the open file: a second Acquire in the same
	// process fails as a second server would.
	_, err = Acquire(dir)
	var inUse *InUseError
	if !errors.As(err, &inUse) || !errors.Is(err, ErrLocked) || inUse.PID != os.Getpid() {
		t.Fatalf("second Acquire: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "in use by process "+strconv.Itoa(os.Getpid())) || !strings.Contains(msg, LockFile) {
		t.Fatalf("message %q does not name the process and the lock file", msg)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, held, _ := Holder(dir); held {
		t.Fatal("held after Release")
	}
	l2, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l2.Release()
}
