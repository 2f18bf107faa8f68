package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// requirement is one line of testdata/requirements.tsv: a tool the tests
// use and the Debian package that provides it.
type requirement struct {
	pkg, kind, name string
}

// requirementsFile is the one list of external tools, shared with test.sh,
// which installs and checks them before the tests run.
const requirementsFile = "testdata/requirements.tsv"

// loadRequirements parses the table; a malformed line is an error so that
// test.sh and the tests cannot silently disagree about it.
func loadRequirements(b []byte) (map[string]requirement, error) {
	reqs := make(map[string]requirement)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 || f[0] == "" || f[2] == "" {
			return nil, fmt.Errorf("%s:%d: want package, kind and name separated by tabs, have %q", requirementsFile, n, line)
		}
		if !slices.Contains([]string{"program", "python", "lua", "prosody", "postgres"}, f[1]) {
			return nil, fmt.Errorf("%s:%d: unknown kind %q", requirementsFile, n, f[1])
		}
		reqs[f[2]] = requirement{pkg: f[0], kind: f[1], name: f[2]}
	}
	return reqs, sc.Err()
}

var requirements = sync.OnceValues(func() (map[string]requirement, error) {
	b, err := os.ReadFile(requirementsFile)
	if err != nil {
		return nil, err
	}
	return loadRequirements(b)
})

// requireTools skips the test, or fails it under AMBROSIA_E2E=1, when a
// program or module it needs is not installed, naming the Debian package
// to install. Every tool must be listed in testdata/requirements.tsv.
func requireTools(t testing.TB, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	reqs, err := requirements()
	if err != nil {
		t.Fatal(err)
	}
	var missing, pkgs []string
	for _, tool := range tools {
		r, ok := reqs[tool]
		if !ok {
			t.Fatalf("%s is not listed in %s: add it with its Debian package so that test.sh installs it", tool, requirementsFile)
		}
		if !toolPresent(r) {
			missing = append(missing, tool)
			if !slices.Contains(pkgs, r.pkg) {
				pkgs = append(pkgs, r.pkg)
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("missing %s (Debian: apt-get install %s)", strings.Join(missing, ", "), strings.Join(pkgs, " "))
	if e2eRequired() {
		t.Fatal(msg)
	}
	t.Skip(msg + "; set AMBROSIA_E2E=1 to make this a failure")
}

var toolCache sync.Map

// toolPresent checks a requirement as test.sh does.
func toolPresent(r requirement) bool {
	if v, ok := toolCache.Load(r.name); ok {
		return v.(bool)
	}
	var ok bool
	switch r.kind {
	case "python":
		ok = exec.Command(python, "-c", "import "+r.name).Run() == nil
	case "lua":
		ok = luaModulePresent(r.name)
	case "prosody":
		ok = prosodyModulePresent(r.name)
	case "postgres":
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + r.name)
		_, err := exec.LookPath(r.name)
		ok = len(dirs) > 0 || err == nil
	default:
		_, ok = findProgram(r.name)
	}
	toolCache.Store(r.name, ok)
	return ok
}

// luaModulePresent asks the Lua interpreter that runs Prosody (named in
// the #! line of the prosody script) to load the module.
func luaModulePresent(module string) bool {
	path, ok := findProgram("prosody")
	if !ok {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	interp, ok := strings.CutPrefix(strings.TrimSpace(line), "#!")
	if !ok {
		return false
	}
	argv := strings.Fields(interp)
	if len(argv) > 1 && filepath.Base(argv[0]) == "env" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return false
	}
	return exec.Command(argv[0], "-e", "require '"+module+"'").Run() == nil
}

// prosodyModuleDir is where Debian's prosody and prosody-modules put
// Prosody's modules.
const prosodyModuleDir = "/usr/lib/prosody/modules"

// prosodyModulePresent reports whether Prosody has the module name
// (mod_NAME), as a file or as a folder of its own.
func prosodyModulePresent(name string) bool {
	for _, p := range []string{filepath.Join(prosodyModuleDir, name+".lua"), filepath.Join(prosodyModuleDir, name, name+".lua")} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// findProgram finds a program on PATH or in the sbin directories, which
// are not on every PATH.
func findProgram(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, true
		}
	}
	return "", false
}

// TestRequirementsTable keeps the table well formed; test.sh reads the same
// file with awk.
func TestRequirementsTable(t *testing.T) {
	reqs, err := requirements()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"slixmpp", "aiohttp", "lunbound", "prosody", "ejabberdctl", "profanity"} {
		if _, ok := reqs[want]; !ok {
			t.Errorf("%s missing from %s", want, requirementsFile)
		}
	}
	if _, err := loadRequirements([]byte("pkg\tprogram\n")); err == nil {
		t.Error("a line without a name was accepted")
	}
	if _, err := loadRequirements([]byte("pkg\tperl\tx\n")); err == nil {
		t.Error("an unknown kind was accepted")
	}
}
