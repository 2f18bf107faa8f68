package main

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: the master end the test types on and
// the terminal end the command reads as its standard input.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// lockedBuffer is a bytes.Buffer safe to read while a command writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPasswordPrompt: user add on a terminal asks for the password twice
// with echo off; what is typed never shows on the terminal.
func TestPasswordPrompt(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runCmd(t, "", "user", "add", "bob@localhost", "--password", "pw", "--data", dir, "--create"); code != 0 {
		t.Fatal(errOut)
	}
	for _, tc := range []struct {
		name    string
		typed   []string
		code    int
		wantErr string
	}{
		{name: "twice the same", typed: []string{"s3cret-typed", "s3cret-typed"}, code: 0},
		{name: "two different", typed: []string{"s3cret-one", "s3cret-two"}, code: 1, wantErr: "the two passwords differ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			master, tty := openPTY(t)
			// Everything the terminal shows: the echo of what is typed, if on.
			var screen lockedBuffer
			go func() {
				buf := make([]byte, 1024)
				for {
					n, err := master.Read(buf)
					screen.Write(buf[:n])
					if err != nil {
						return
					}
				}
			}()
			var out, errOut lockedBuffer
			done := make(chan int, 1)
			go func() {
				done <- run(context.Background(), []string{"user", "passwd", "bob@localhost", "--data", dir}, tty, &out, &errOut)
			}()
			for i, line := range tc.typed {
				// Type only once the prompt is out and echo is off, as a
				// person would after reading the prompt.
				deadline := time.Now().Add(20 * time.Second)
				for strings.Count(errOut.String(), ": ") <= i || echoOn(t, master) {
					if time.Now().After(deadline) {
						t.Fatalf("no prompt %d with echo off; stderr %q", i+1, errOut.String())
					}
					time.Sleep(5 * time.Millisecond)
				}
				if _, err := master.Write([]byte(line + "\r")); err != nil {
					t.Fatal(err)
				}
			}
			code := <-done
			if code != tc.code || !strings.Contains(errOut.String(), tc.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut.String(), tc.code, tc.wantErr)
			}
			if e := errOut.String(); strings.Count(e, "Password for bob@localhost: ") != 1 || strings.Count(e, "The same password again: ") != 1 {
				t.Errorf("want one prompt and one for the confirmation in %q", e)
			}
			for _, typed := range tc.typed {
				if strings.Contains(screen.String(), typed) {
					t.Errorf("the terminal shows the password: %q", screen.String())
				}
			}
		})
	}
	// The password of the first case is set; standard input that is not a
	// terminal still gives it on its first line.
	if code, out, errOut := runCmd(t, "s3cret-piped\n", "user", "passwd", "bob@localhost", "--data", dir); code != 0 || !strings.Contains(out, "changed") {
		t.Fatalf("piped: exit %d %q %q", code, out, errOut)
	}
}

// echoOn reports whether the terminal behind master echoes input.
func echoOn(t *testing.T, master *os.File) bool {
	tio, err := unix.IoctlGetTermios(int(master.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ECHO != 0
}
