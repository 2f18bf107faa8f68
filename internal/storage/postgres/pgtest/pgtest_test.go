package pgtest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestClusterLifecycle(t *testing.T) {
	c, err := Start(t.Context())
	if err != nil {
		unavailable(t, err)
	}
	stopped := false
	defer func() {
		if !stopped {
			c.Stop()
		}
	}()
	ctx := t.Context()
	name, dsn, err := c.CreateDatabase(ctx, DatabaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dsn, c.SocketDSN(name)} {
		conn, err := pgx.Connect(ctx, d)
		if err != nil {
			t.Fatalf("connect %s: %v", d, err)
		}
		var db string
		if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil || db != name {
			t.Errorf("%s: current_database() = %q, %v; want %q", d, db, err, name)
		}
		conn.Close(ctx)
	}
	if os.Geteuid() == 0 {
		if uid := processUID(t, c.cmd.Process.Pid); uid == 0 {
			t.Error("postgres runs as root")
		}
	}
	if !strings.HasPrefix(dsn, "postgres://ambrosia@127.0.0.1:"+strconv.Itoa(c.Port())+"/") {
		t.Errorf("DSN %q is not on loopback port %d", dsn, c.Port())
	}
	if err := c.DropDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	if conn, err := pgx.Connect(ctx, dsn); err == nil {
		conn.Close(ctx)
		t.Error("dropped database still accepts connections")
	}
	stopped = true
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.done:
	default:
		t.Error("postgres still running after Stop")
	}
	if _, err := os.Stat(c.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory left behind: %v", err)
	}
}

func processUID(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("cannot inspect the server process: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
			uid, err := strconv.Atoi(strings.Fields(rest)[0])
			if err != nil {
				t.Fatal(err)
			}
			return uid
		}
	}
	t.Fatal("no Uid line")
	return -1
}

// recorder is a testing.TB that records a skip or a failure instead of
// ending the test.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()              {}
func (r *recorder) Skipf(string, ...any) { r.skipped = true }
func (r *recorder) Fatal(...any)         { r.failed = true }

func TestUnavailable(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		e2e        string
		skip, fail bool
	}{
		{"missing server skips", ErrNoServer, "", true, false},
		{"missing server fails under AMBROSIA_E2E=1", ErrNoServer, "1", false, true},
		{"wrapped missing server skips", fmt.Errorf("x: %w", ErrNoServer), "0", true, false},
		{"broken server fails", errors.New("initdb: exit status 1"), "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AMBROSIA_E2E", tt.e2e)
			r := &recorder{TB: t}
			unavailable(r, tt.err)
			if r.skipped != tt.skip || r.failed != tt.fail {
				t.Fatalf("skipped %v, failed %v; want %v, %v", r.skipped, r.failed, tt.skip, tt.fail)
			}
		})
	}
}

// TestCrashRestart: a crashed server starts again on the same port with
// its databases and what was committed in them.
func TestCrashRestart(t *testing.T) {
	c := New(t)
	ctx := t.Context()
	_, dsn, err := c.CreateDatabase(ctx, DatabaseOptions{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	port := c.Port()
	c.Crash()
	if _, err := pgx.Connect(ctx, dsn); err == nil {
		t.Fatal("connected to a crashed server")
	}
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Port() != port {
		t.Fatalf("restarted on port %d, was %d", c.Port(), port)
	}
	conn, err = pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var x int
	if err := conn.QueryRow(ctx, "SELECT x FROM t").Scan(&x); err != nil || x != 42 {
		t.Fatalf("after the restart: %d, %v", x, err)
	}
}
