package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage/sqlite"
)

// firstSteps returns the lines of the README's "First steps" code block.
func firstSteps(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n## First steps\n")
	if !ok {
		t.Fatal("README.md has no First steps section")
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md: no sh code block in First steps")
	}
	return strings.Split(strings.TrimSpace(block), "\n")
}

// TestWalkthrough runs the README's First steps verbatim, as a new user
// would from a fresh copy of the sources: build, start the server, add
// two users from standard input and with --password, list them, send a
// message with go-sendxmpp. It runs in a network namespace of its own,
// where the standard ports are free. Afterwards the message waits for
// Bob in the server's store, and ambrosia version names the commit built.
func TestWalkthrough(t *testing.T) {
	requireTools(t, "go-sendxmpp", "unshare", "ip")
	steps := firstSteps(t)

	// A fresh copy: the tracked files as they are now, committed into a
	// repository of their own, so that go build records its commit.
	src := filepath.Join(t.TempDir(), "ambrosia")
	files, err := exec.Command("git", "-C", moduleRoot, "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		from := filepath.Join(moduleRoot, f)
		fi, err := os.Lstat(from)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, or not a file
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, f), b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", src, "-c", "user.name=Walkthrough", "-c", "user.email=walkthrough@localhost"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "walkthrough")
	head := git("rev-parse", "HEAD")

	// The README's lines, each echoed first; after one that starts a
	// program in the background, wait until the server listens, as a
	// reader waits for its "listening" lines.
	var script bytes.Buffer
	script.WriteString("set -e\nip link set lo up\n")
	for _, l := range steps {
		fmt.Fprintf(&script, "echo %s\n%s\n", shellQuote("$ "+l), l)
		if strings.HasSuffix(strings.TrimSpace(strings.Split(l, "#")[0]), "&") {
			script.WriteString("for i in $(seq 300); do (echo >/dev/tcp/127.0.0.1/5222) 2>/dev/null && break; sleep 0.1; done\n")
		}
	}
	script.WriteString("echo '$ ./ambrosia version'\n./ambrosia version\nkill -TERM %1\nwait %1\n")
	home := t.TempDir()
	// HOME is go-sendxmpp's; the go command keeps its caches where they
	// are, so that the build needs no network.
	goEnv, err := exec.Command("go", "env", "GOMODCACHE", "GOCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatal(err)
	}
	ge := strings.Split(strings.TrimSpace(string(goEnv)), "\n")
	if len(ge) != 3 {
		t.Fatalf("go env: %q", goEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "bash", "-c", script.String())
	cmd.Dir = src
	// A build that records its commit, whatever the machine's go env
	// says; a home of its own for go-sendxmpp.
	cmd.Env = append(oneShotEnv(), "GOFLAGS=-buildvcs=auto", "HOME="+home, "GOMODCACHE="+ge[0], "GOCACHE="+ge[1], "GOPATH="+ge[2])
	out, err := cmd.CombinedOutput()
	t.Logf("walkthrough:\n%s", out)
	if err != nil {
		t.Fatalf("the README's First steps failed: %v", err)
	}
	if !regexp.MustCompile(`(?m)^alice@localhost\nbob@localhost\n`).Match(out) {
		t.Error("user list did not list alice and bob")
	}
	if !strings.Contains(string(out), "commit "+head) {
		t.Errorf("ambrosia version does not name the commit built, %s", head)
	}

	store, err := sqlite.Open(context.Background(), filepath.Join(src, "data", "ambrosia.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	msgs, err := store.OfflineMessages(context.Background(), "bob@localhost")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].Stanza), "Hello, Bob!") || !strings.Contains(string(msgs[0].Stanza), "alice@localhost") {
		t.Fatalf("Bob's stored messages: %d, want the one from Alice", len(msgs))
	}
}
