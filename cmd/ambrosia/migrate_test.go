package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/datadir"
)

// TestImportExport: an import of the migrate package's ejabberd-like
// file, again (nothing changes), an export, and the import of the export
// into a second data directory; a running server's data directory is
// refused.
func TestImportExport(t *testing.T) {
	src := filepath.Join("..", "..", "internal", "migrate", "testdata", "ejabberd.xml")
	data := t.TempDir()
	code, out, errOut := runCmd(t, "", "import", "--data", data, "--domain", "example.com", src)
	if code != 0 || !strings.Contains(out, "accounts:        2 new, 1 skipped") || !strings.Contains(out, "creating the database") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "", "import", "--data", data, "--domain", "example.com", src)
	if code != 0 || !strings.Contains(out, "nothing changed") {
		t.Fatalf("second import: exit %d\n%s%s", code, out, errOut)
	}
	file := filepath.Join(t.TempDir(), "export.xml")
	code, _, errOut = runCmd(t, "", "export", "--data", data, "--domain", "example.com", file)
	if code != 0 || !strings.Contains(errOut, "exported 2 users") {
		t.Fatalf("export: exit %d %s", code, errOut)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("export file %v %v", fi, err)
	}
	if code, _, errOut = runCmd(t, "", "export", "--data", data, "--domain", "example.com", file); code == 0 || !strings.Contains(errOut, "--force") {
		t.Errorf("export over a file: exit %d %s", code, errOut)
	}
	data2 := t.TempDir()
	code, out, errOut = runCmd(t, "", "import", "--data", data2, "--domain", "example.com", file)
	if code != 0 || !strings.Contains(out, "accounts:        2 new\n") || !strings.Contains(out, "offline messages: 1 new") {
		t.Fatalf("import of the export: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCmd(t, "", "user", "list", "--data", data2, "--domain", "example.com")
	if code != 0 || out != "alice@example.com\nbob@example.com\n" {
		t.Errorf("user list: %d %q", code, out)
	}

	lock, err := datadir.Acquire(data)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	code, _, errOut = runCmd(t, "", "import", "--data", data, "--domain", "example.com", src)
	if code != 1 || !strings.Contains(errOut, "stop it first") {
		t.Errorf("import beside a server: exit %d %s", code, errOut)
	}
}

// TestImportMalformed: a bad file names the place and imports nothing.
func TestImportMalformed(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.xml")
	in := "<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='example.com'>\n<user name='good' password='x'/>\n<user name='bad'><query xmlns='jabber:iq:roster'><item jid='b@example.com' subscription='sometimes'/></query></user>\n</host></server-data>\n"
	if err := os.WriteFile(bad, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	code, out, errOut := runCmd(t, "", "import", "--data", data, "--domain", "example.com", bad)
	if code != 1 || !strings.Contains(errOut, "bad.xml:4: <item>: subscription \"sometimes\"") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "ambrosia.db")); err == nil {
		t.Error("a database was created for a malformed file")
	}
}
