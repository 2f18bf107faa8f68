package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runAmbrosia runs a one-shot command and returns its exit code and
// combined output, whatever the code.
func runAmbrosia(t testing.TB, dir, stdin string, env []string, args ...string) (int, string) {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("building ./cmd/ambrosia failed: %v\n%s", buildErr, buildLog)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Dir = dir
	cmd.Env = append(oneShotEnv(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exitErr):
		return exitErr.ExitCode(), string(out)
	}
	t.Fatalf("ambrosia %s: %v\n%s", strings.Join(args, " "), err, out)
	return -1, ""
}

// TestSecondServeRefused: a second server on the data directory of a
// running one refuses to start and names the process that holds it.
func TestSecondServeRefused(t *testing.T) {
	s := startServer(t, ServerOptions{})
	pid := strconv.Itoa(s.cmd.Process.Pid)
	code, out := runAmbrosia(t, "", "", []string{"AMBROSIA_UPLOAD_ADDR=127.0.0.1:" + strconv.Itoa(freePort(t))},
		"serve", "--data", s.DataDir, "--c2s-addr", "127.0.0.1:"+strconv.Itoa(freePort(t)), "--c2s-tls-addr", "")
	if code != 1 || !strings.Contains(out, "in use by process "+pid) {
		t.Fatalf("second serve: exit %d, want 1 and a message naming process %s:\n%s", code, pid, out)
	}
	// The first one still serves.
	waitListening(t, s.Addr, s.done, "ambrosia", nil)
}

// TestUserCommandsCreateNoDatabase: the user commands run from a
// directory without the server's data create no database there (a user
// added to it would never reach the server): they say where they looked.
func TestUserCommandsCreateNoDatabase(t *testing.T) {
	s := startServer(t, ServerOptions{})
	elsewhere := t.TempDir()
	want := filepath.Join(elsewhere, "data", "ambrosia.db")
	for _, args := range [][]string{
		{"user", "add", "alice@localhost", "--password", "pw"},
		{"user", "list"},
		{"user", "del", "alice@localhost"},
		{"user", "passwd", "alice@localhost", "--password", "pw"},
	} {
		code, out := runAmbrosia(t, elsewhere, "", nil, args...)
		if code != 1 || !strings.Contains(out, "no database at "+want) {
			t.Errorf("%s: exit %d, want 1 and a message naming %s:\n%s", strings.Join(args, " "), code, want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the user commands created %s/data: %v", elsewhere, err)
	}
	// Where the server runs, they work.
	addUser(t, s, "alice@localhost", "pw")
	if code, out := runAmbrosia(t, "", "", nil, "user", "list", "--data", s.DataDir); code != 0 || out != "alice@localhost\n" {
		t.Errorf("user list: exit %d:\n%s", code, out)
	}
}
