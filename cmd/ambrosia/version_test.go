package main

import (
	"database/sql"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionCommit: ambrosia version prints the commit from the build
// information, the one given with -ldflags when the build recorded none,
// and says so when it knows none.
func TestVersionCommit(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	vcs := []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}
	for _, tc := range []struct {
		settings []debug.BuildSetting
		fallback string
		want     string
	}{
		{vcs, "", "commit " + rev + " (2026-12-01T10:00:00Z) with uncommitted changes\n"},
		{vcs, "feedface", "commit " + rev + " ("},
		{nil, "feedfacefeedface", "commit feedfacefeedface\n"},
		{nil, "", "commit unknown: built without version control information"},
	} {
		var b strings.Builder
		writeVersion(&b, tc.settings, tc.fallback)
		if !strings.HasPrefix(b.String(), "ambrosia "+baseVersion+"\n") || !strings.Contains(b.String(), tc.want) {
			t.Errorf("%v %q: printed %q, want %q", tc.settings, tc.fallback, b.String(), tc.want)
		}
	}
	if code, out, _ := runCmd(t, "", "version"); code != 0 || !strings.Contains(out, "\ncommit ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

// TestSchemaVersion: ambrosia version --data DIR prints the schema version
// of the database; a database a newer program migrated is refused with a
// message that says so, by every command.
func TestSchemaVersion(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runCmd(t, "", "user", "add", "a@localhost", "--password", "pw", "--data", dir, "--create"); code != 0 {
		t.Fatal(errOut)
	}
	code, out, errOut := runCmd(t, "", "version", "--data", dir)
	if code != 0 || !regexp.MustCompile(`schema version (\d+); this program knows up to (\d+): current\n`).MatchString(out) {
		t.Fatalf("version --data: exit %d, %q %q", code, out, errOut)
	}
	known := regexp.MustCompile(`knows up to (\d+)`).FindStringSubmatch(out)[1]

	// A newer program's migration.
	db, err := sql.Open("sqlite", filepath.Join(dir, "ambrosia.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version) SELECT MAX(version) + 1 FROM schema_migrations`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, out, _ = runCmd(t, "", "version", "--data", dir)
	if code != 1 || !strings.Contains(out, "newer than this program") {
		t.Fatalf("version --data on a newer schema: exit %d, %q", code, out)
	}
	code, _, errOut = runCmd(t, "", "user", "list", "--data", dir)
	if code != 1 || !strings.Contains(errOut, "newer than version "+known+", the newest this program knows") || !strings.Contains(errOut, "a newer ambrosia has used it") {
		t.Fatalf("user list on a newer schema: exit %d, %q", code, errOut)
	}
}
