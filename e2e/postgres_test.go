package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage/postgres/pgtest"
)

// TestPostgresSharedState runs the server on PostgreSQL: accounts made by
// `ambrosia user` against the same database log in, a message goes
// through, and a message stored while its recipient was offline is
// delivered by a second server that shares nothing with the first but the
// database (a fresh data directory), as another instance would.
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

	ambrosia(t, "", "user", "del", bob, "--config", conf)
	if got := ambrosia(t, "", "user", "list", "--config", conf); strings.TrimSpace(got) != alice {
		t.Fatalf("user list after del = %q", got)
	}
}
