package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage/postgres/pgtest"
)

// fillTemplate writes the test template name of testdata/migrate to dst
// with the fields replaced.
func fillTemplate(t *testing.T, name, dst string, fields ...string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, "e2e", "testdata", "migrate", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, []byte(strings.NewReplacer(fields...).Replace(string(b))), 0o600); err != nil {
		t.Fatal(err)
	}
}

// importInto runs ambrosia import of src with the storage flags and
// returns the report.
func importInto(t *testing.T, storeFlags []string, src string) string {
	t.Helper()
	args := append([]string{"import", "--domain", domain}, storeFlags...)
	out := ambrosia(t, "", append(args, src)...)
	t.Logf("ambrosia import %s:\n%s", src, out)
	return out
}

// checkReport fails the test unless the import report has every line of
// want.
func checkReport(t *testing.T, report string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(report, w) {
			t.Errorf("the import report lacks %q:\n%s", w, report)
		}
	}
}

// migrateAndCheck imports src into a new data directory, imports it again
// (nothing changes), starts Ambrosia on it, and has the users of
// migrate_populate.py log in with their old passwords and check what
// they find.
func migrateAndCheck(t *testing.T, src string, report []string, checkArgs ...string) {
	t.Helper()
	data := t.TempDir()
	migrateAndCheckOn(t, []string{"--data", data}, ServerOptions{DataDir: data}, src, report, checkArgs...)
}

// migrateAndCheckOn is migrateAndCheck on the storage that storeFlags
// select for the import and opts for the server.
func migrateAndCheckOn(t *testing.T, storeFlags []string, opts ServerOptions, src string, report []string, checkArgs ...string) {
	t.Helper()
	checkReport(t, importInto(t, storeFlags, src), report...)
	checkReport(t, importInto(t, storeFlags, src), "nothing changed: everything was already there")
	s := startServer(t, opts)
	args := append(s.clientArgs(false), "--domain", domain, "--service", "conference."+domain)
	out := mustPython(t, "migrate_check", append(args, checkArgs...)...)
	if !strings.Contains(out, "MIGRATED") {
		t.Errorf("migrate_check.py did not finish:\n%s", out)
	}
}

// TestMigrateProsody fills a real Prosody (internal storage, SCRAM-SHA-1
// keys as Debian configures it) through slixmpp clients, then brings its
// users to Ambrosia twice: through prosody-migrator's XEP-0227 export, and
// straight from its data directory. Each time the users log in to Ambrosia
// with their old passwords and find their rosters, vCard, bookmarks, PEP
// nickname and message archive; from the data directory, carol's offline message and the
// room with its affiliations come as well (prosody-migrator's XEP-0227
// driver has no offline messages or rooms). The import from the data
// directory runs once more into PostgreSQL.
func TestMigrateProsody(t *testing.T) {
	requireTools(t, "slixmpp", "prosody", "prosodyctl", "prosody-migrator", "unshare", "mount")
	dir := t.TempDir()
	ca := newFedCA(t)
	certFile, keyFile := ca.issue(t, domain)
	port := freePort(t)
	cfgFile := filepath.Join(dir, "prosody.cfg.lua")
	fillTemplate(t, "prosody.cfg.lua", cfgFile, "{{DIR}}", dir, "{{PORT}}", strconv.Itoa(port),
		"{{CERT}}", certFile, "{{KEY}}", keyFile, "{{DOMAIN}}", domain)
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		if out, err := exec.Command("prosodyctl", "--config", cfgFile, "register", u, domain, u+"-pw").CombinedOutput(); err != nil {
			t.Fatalf("prosodyctl register %s: %v\n%s", u, err, out)
		}
	}
	d := runDaemon(t, "prosody", exec.Command("prosody", "--config", cfgFile), 10*time.Second, filepath.Join(dir, "prosody.log"), nil)
	waitListening(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), d.done, "prosody", d.logs)
	mustPython(t, "migrate_populate", "--port", strconv.Itoa(port), "--ca", ca.CAFile, "--domain", domain, "--service", "conference."+domain)

	t.Run("xep0227", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "xep0227")
		if err := os.MkdirAll(out, 0o700); err != nil {
			t.Fatal(err)
		}
		mcfg := filepath.Join(t.TempDir(), "migrator.cfg.lua")
		fillTemplate(t, "migrator.cfg.lua", mcfg, "{{DATA}}", dataDir, "{{OUT}}", out, "{{DOMAIN}}", domain)
		// The xep0227 driver writes to Prosody's data path, which the
		// migrator takes from its build (/var/lib/prosody): a private
		// mount namespace puts the output directory there for this
		// command alone. --root keeps the migrator from switching to the
		// prosody user, who could not read the test's directories.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "unshare", "-m", "sh", "-c",
			`mount --bind "$1" /var/lib/prosody && exec prosody-migrator --root --config="$2" input output`, "sh", out, mcfg)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("prosody-migrator: %v\n%s", err, b)
		}
		files, _ := filepath.Glob(filepath.Join(out, "*.xml"))
		if len(files) != 3 {
			t.Fatalf("prosody-migrator wrote %v", files)
		}
		migrateAndCheck(t, out, []string{"accounts:        3 new", "roster items:    4 new", "vCards:          1 new",
			"private XML:     1 new", "PEP items:       1 new", "archived messages: 4 new"}, "--no-room", "--no-offline")
	})
	fromDataDir := []string{"accounts:        3 new", "roster items:    4 new", "offline messages: 1 new",
		"rooms:           1 new", "affiliations:    2 new", "PEP items:       1 new", "archived messages: 4 new"}
	t.Run("datadir", func(t *testing.T) {
		migrateAndCheck(t, dataDir, fromDataDir)
	})
	t.Run("datadir-postgres", func(t *testing.T) {
		dsn := pgtest.New(t).Database(t, pgtest.DatabaseOptions{})
		conf := filepath.Join(t.TempDir(), "ambrosia.toml")
		doc := "[storage]\nbackend = \"postgres\"\npostgres_dsn = " + strconv.Quote(dsn) + "\n"
		if err := os.WriteFile(conf, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		migrateAndCheckOn(t, []string{"--config", conf}, ServerOptions{ExtraArgs: []string{"--config", conf}}, dataDir, fromDataDir)
	})
}

// TestMigrateEjabberd fills a real ejabberd through slixmpp clients, exports
// it with ejabberdctl export_piefxis, imports the export, and has the users
// log in to Ambrosia with their old passwords: with the passwords stored
// as SCRAM keys (which ejabberd 23.01 exports encoded twice) and in clear.
// ejabberd's export has no PEP nodes or rooms.
func TestMigrateEjabberd(t *testing.T) {
	requireTools(t, "slixmpp", "ejabberdctl", "erl", "epmd")
	for _, format := range []string{"scram", "plain"} {
		t.Run(format, func(t *testing.T) {
			out := exportEjabberd(t, format)
			migrateAndCheck(t, out, []string{"accounts:        3 new", "roster items:    4 new", "vCards:          1 new",
				"private XML:     1 new", "offline messages: 1 new"}, "--no-room", "--no-pep", "--no-archive")
		})
	}
}

// migEjabberd is a private ejabberd node of the migration tests.
type migEjabberd struct {
	port int
	ca   *fedCA
	// ctl runs ejabberdctl with args against the node.
	ctl func(args ...string)
}

// startMigEjabberd runs a private ejabberd node for domain with the given
// auth_password_format, with alice, bob and carol registered when
// register is set.
func startMigEjabberd(t *testing.T, format string, register bool) *migEjabberd {
	t.Helper()
	dir := t.TempDir()
	ca := newFedCA(t)
	certFile, keyFile := ca.issue(t, domain)
	port := freePort(t)
	cfgFile := filepath.Join(dir, "ejabberd.yml")
	fillTemplate(t, "ejabberd.yml", cfgFile, "{{DOMAIN}}", domain, "{{PORT}}", strconv.Itoa(port),
		"{{CERT}}", certFile, "{{KEY}}", keyFile, "{{PASSWORD_FORMAT}}", format)
	for _, d := range []string{"spool", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// ejabberdctl talks to the node over Erlang distribution: the node
	// gets a name, a cookie the control node is given as well, and its
	// own epmd on a free port, stopped when the test ends (registered
	// first, so that it runs after the node has stopped).
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	cookie := hex.EncodeToString(rnd[:])
	node := fmt.Sprintf("ambrosiamig%d@localhost", port)
	epmdPort := startEpmd(t)
	env := append(os.Environ(), "ERL_EPMD_PORT="+epmdPort)
	const ready = "ambrosia-e2e-ready"
	eval := `io:format("` + ready + `~n")`
	if register {
		var reg []string
		for _, u := range []string{"alice", "bob", "carol"} {
			reg = append(reg, fmt.Sprintf(`ok = ejabberd_auth:try_register(<<"%s">>, <<"%s">>, <<"%s-pw">>)`, u, domain, u))
		}
		eval = strings.Join(reg, ", ") + ", " + eval
	}
	cmd := exec.Command("erl", "-sname", node, "-setcookie", cookie, "-noinput", "-noshell", "+K", "true",
		"-mnesia", "dir", `"`+filepath.Join(dir, "spool")+`"`,
		"-s", "ejabberd", "-eval", eval)
	cmd.Env = append(env,
		"EJABBERD_CONFIG_PATH="+cfgFile,
		"EJABBERD_LOG_PATH="+filepath.Join(dir, "logs", "ejabberd.log"),
		"EJABBERD_PID_PATH="+filepath.Join(dir, "ejabberd.pid"),
		"ERL_LIBS="+ejabberdLibs,
		"ERL_CRASH_DUMP_BYTES=0",
		"HOME="+dir)
	d := runDaemon(t, "ejabberd", cmd, 10*time.Second, filepath.Join(dir, "logs", "ejabberd.log"), nil)
	// The Erlang VM starts slowly on a busy machine: the wait is long,
	// and the test goes on as soon as ejabberd says it is ready.
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(d.out.String(), ready) {
		select {
		case <-d.done:
			t.Fatalf("ejabberd exited before it was ready\n%s", d.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ejabberd not ready after 90 s\n%s", d.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitListening(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), d.done, "ejabberd", d.logs)

	// ejabberdctl runs its control node as the ejabberd user (su), with
	// the options of its control file: the cookie.
	ctlCfg := filepath.Join(dir, "ejabberdctl.cfg")
	if err := os.WriteFile(ctlCfg, []byte(`ERL_OPTIONS="-setcookie `+cookie+`"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctl := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		ec := exec.CommandContext(ctx, "ejabberdctl", append([]string{"--node", node, "--ctl-config", ctlCfg, "--config", cfgFile,
			"--spool", filepath.Join(dir, "spool"), "--logs", filepath.Join(dir, "logs")}, args...)...)
		ec.Env = env
		if b, err := ec.CombinedOutput(); err != nil {
			t.Fatalf("ejabberdctl %s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
	return &migEjabberd{port: port, ca: ca, ctl: ctl}
}

// exportEjabberd runs a private ejabberd node with the given
// auth_password_format, fills it and returns the directory that
// ejabberdctl export_piefxis wrote.
func exportEjabberd(t *testing.T, format string) string {
	t.Helper()
	e := startMigEjabberd(t, format, true)
	mustPython(t, "migrate_populate", "--port", strconv.Itoa(e.port), "--ca", e.ca.CAFile, "--domain", domain, "--service", "conference."+domain)
	export := t.TempDir()
	e.ctl("export_piefxis", export)
	files, _ := filepath.Glob(filepath.Join(export, "*.xml"))
	if len(files) != 2 {
		t.Fatalf("export_piefxis wrote %v", files)
	}
	return export
}

// TestExportToEjabberd goes the other way: users filled in on Ambrosia
// are exported (--ejabberd-keys) while it runs, ejabberdctl
// import_piefxis reads the file into a real ejabberd, and the users log
// in there with their passwords and find their rosters, vCard, bookmarks
// and offline message. (ejabberd's import sets roster items as a client
// would, which cannot set a pending outgoing request: alice's item for
// carol arrives without it, while carol still gets the request.)
func TestExportToEjabberd(t *testing.T) {
	requireTools(t, "slixmpp", "ejabberdctl", "erl", "epmd")
	s := startServer(t, ServerOptions{})
	for _, u := range []string{"alice", "bob", "carol"} {
		addUser(t, s, u+"@"+domain, u+"-pw")
	}
	mustPython(t, "migrate_populate", append(s.clientArgs(false), "--domain", domain, "--service", "conference."+domain)...)
	file := filepath.Join(t.TempDir(), "ambrosia.xml")
	ambrosia(t, "", "export", "--ejabberd-keys", "--data", s.DataDir, "--domain", domain, file)
	e := startMigEjabberd(t, "scram", false)
	e.ctl("import_piefxis", file)
	out := mustPython(t, "migrate_check", "--port", strconv.Itoa(e.port), "--ca", e.ca.CAFile, "--domain", domain,
		"--service", "conference."+domain, "--no-room", "--no-pep", "--no-pending-out", "--no-archive")
	if !strings.Contains(out, "MIGRATED") {
		t.Errorf("migrate_check.py did not finish:\n%s", out)
	}
}

// TestImportMalformed: XEP-0227 files with a mistake are refused with the
// file, line and element named, and nothing of them is imported, not even
// the users before the mistake.
func TestImportMalformed(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	good := "<user name='good' password='good-pw'/>\n"
	for _, tc := range []struct{ name, body, want string }{
		{"unclosed element", good + "<user name='bad'><vCard xmlns='vcard-temp'><FN>x</vCard></user>\n", "bad.xml:3: <FN>: not well-formed"},
		{"bad roster item", good + "<user name='bad'><query xmlns='jabber:iq:roster'><item jid='x@localhost' subscription='sometimes'/></query></user>\n", "bad.xml:3: <item>: subscription \"sometimes\""},
		{"bad SCRAM keys", good + "<user name='bad'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>4096</iter-count><salt>!!</salt><server-key>AA==</server-key><stored-key>AA==</stored-key></scram-credentials></user>\n", "bad.xml:3: <salt>: not base64"},
		{"user twice", good + good, "user good@localhost already defined at"},
		{"entity", good + "<user name='&bad;'/>\n", "not well-formed"},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "-"), func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "bad.xml")
			body := "<server-data xmlns='urn:xmpp:pie:0'><host jid='" + domain + "'>\n" + tc.body + "</host></server-data>\n"
			if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			s := startServer(t, ServerOptions{})
			s.Stop(t)
			cmd := exec.Command(binPath, "import", "--data", s.DataDir, "--domain", domain, file)
			cmd.Env = oneShotEnv()
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("import: %v\n%s\nwant an error with %q", err, out, tc.want)
			}
			if list := ambrosia(t, "", "user", "list", "--data", s.DataDir, "--domain", domain); list != "" {
				t.Errorf("users after a refused import: %q", list)
			}
		})
	}
}

// startEpmd runs an epmd of the test's own in the foreground, on loopback
// and a free port, and returns the port once it listens. It is a child of
// the test, stopped when the test ends (registered before the node, so
// that it stops after it), and its output is shown if it fails: an epmd
// started with -daemon, or by the node itself, leaves no trace when it
// cannot listen. A port taken by another process in the meantime is
// retried with another.
func startEpmd(t *testing.T) string {
	t.Helper()
	var last string
	for try := 0; try < 3; try++ {
		port := strconv.Itoa(freePort(t))
		d := runDaemon(t, "epmd", exec.Command("epmd", "-address", "127.0.0.1", "-port", port), 5*time.Second, "", nil)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
			if err == nil {
				c.Close()
				return port
			}
			last = err.Error()
			select {
			case <-d.done:
				last = "epmd exited: " + d.out.String()
				deadline = time.Time{}
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	t.Fatalf("epmd did not listen on loopback (three ports tried): %s", last)
	return ""
}
