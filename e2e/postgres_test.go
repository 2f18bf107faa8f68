package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage/postgres/pgtest"
)

// TestPostgresSharedState runs the server on PostgreSQL: accounts made by
// `ambrosia user` against the same database log in, a message goes
// through, and a message stored while its recipient was offline is
// delivered by a second server that shares nothing with the first but the
// database (a fresh data directory), as another instance would. A
// password changed by the user command reaches that server's credential
// cache: the old one is refused at once.
func TestPostgresSharedState(t *testing.T) {
	requireTools(t, "slixmpp")
	pg := pgtest.New(t)
	dsn := pg.Database(t, pgtest.DatabaseOptions{})
	conf := filepath.Join(t.TempDir(), "ambrosia.toml")
	doc := "[storage]\nbackend = \"postgres\"\npostgres_dsn = " + strconv.Quote(dsn) + "\n"
	if err := os.WriteFile(conf, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := ServerOptions{ExtraArgs: []string{"--config", conf}}

	s := startServer(t, opts)
	ambrosia(t, alicePass+"\n", "user", "add", alice, "--config", conf)
	ambrosia(t, "first-password\n", "user", "add", bob, "--config", conf)
	ambrosia(t, bobPass+"\n", "user", "passwd", bob, "--config", conf)
	if got := ambrosia(t, "", "user", "list", "--config", conf); got != alice+"\n"+bob+"\n" {
		t.Fatalf("user list = %q", got)
	}

	mustPython(t, "message", messageArgs(s, "pg-1", "stored in PostgreSQL", "")...)
	mustPython(t, "offline_send", append(s.clientArgs(false),
		"--jid", alice, "--password", alicePass, "--to", bob, "--body", "while you were away", "--count", "2")...)
	s.Stop(t)
	if _, err := os.Stat(filepath.Join(s.DataDir, "ambrosia.db")); err == nil {
		t.Error("the server created a SQLite database although the backend is postgres")
	}

	s2 := startServer(t, opts) // a fresh data directory: only the database is shared
	mustPython(t, "offline_receive", append(s2.clientArgs(false),
		"--jid", bob, "--password", bobPass, "--body", "while you were away", "--count", "2", "--expect-from", alice)...)
	// Delivered means gone, for every instance.
	mustPython(t, "offline_receive", append(s2.clientArgs(false),
		"--jid", bob, "--password", bobPass, "--body", "while you were away", "--count", "0", "--expect-from", alice)...)

	// s2 keeps bob's credentials in memory after a login: a password
	// changed by another process reaches it through the database's
	// announcement.
	mustPython(t, "login", loginArgs(s2, false, bob, bobPass, "SCRAM-SHA-1")...)
	const newBobPass = "changed-by-another-process"
	ambrosia(t, newBobPass+"\n", "user", "passwd", bob, "--config", conf)
	checkFor(t, 10*time.Second, func() error {
		code, out := runPython(t, "login", loginArgs(s2, false, bob, bobPass, "SCRAM-SHA-1")...)
		if code != 3 || !strings.Contains(out, "AUTH_FAILED condition=not-authorized") {
			return fmt.Errorf("the old password after the change: exit code %d, want 3 (not-authorized):\n%s", code, out)
		}
		return nil
	})
	mustPython(t, "login", loginArgs(s2, false, bob, newBobPass, "SCRAM-SHA-1")...)

	ambrosia(t, "", "user", "del", bob, "--config", conf)
	if got := ambrosia(t, "", "user", "list", "--config", conf); strings.TrimSpace(got) != alice {
		t.Fatalf("user list after del = %q", got)
	}
}
