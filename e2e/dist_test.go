package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/config"
)

// TestSystemdUnit: dist/systemd/ambrosia.service passes systemd-analyze
// verify, and its hardening keeps systemd's exposure rating at "OK".
func TestSystemdUnit(t *testing.T) {
	requireTools(t, "systemd-analyze")
	if buildErr != nil {
		t.Fatalf("building ./cmd/ambrosia failed: %v\n%s", buildErr, buildLog)
	}
	b, err := os.ReadFile(filepath.Join(moduleRoot, "dist", "systemd", "ambrosia.service"))
	if err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart's program exists: the one just built
	// stands in for the installed one.
	unit := filepath.Join(t.TempDir(), "ambrosia.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/ambrosia", binPath)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Logf("systemd-analyze security --offline not available here: %v\n%s", err, out)
		return
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.0 {
		t.Fatalf("exposure level %s %s, want at most 2.0 (OK):\n%s", m[1], m[2], out)
	}
}

// TestDistFiles: the packaged configuration is valid, and the ports the
// container image exposes and the configuration's listeners open are
// those the README lists.
func TestDistFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	c, err := config.Load(filepath.Join(moduleRoot, "dist", "ambrosia.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("dist/ambrosia.toml: %v", err)
	}
	if c.DataDir != "/var/lib/ambrosia" {
		t.Errorf("dist/ambrosia.toml: data_dir %q", c.DataDir)
	}
	readme, err := os.ReadFile(filepath.Join(moduleRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	// The rows of the README's table of ports: | 5222 | ...
	var listed []string
	for _, m := range regexp.MustCompile(`(?m)^\| (\d{2,5}) \|`).FindAllStringSubmatch(string(readme), -1) {
		listed = append(listed, m[1])
	}
	d := config.Default()
	for _, addr := range []string{d.C2S.Addr, d.C2S.TLSAddr, d.S2S.Addr, d.Component.Addr, d.Upload.Addr, d.API.Addr, d.TLS.ACMEHTTPAddr, "127.0.0.1:5270", ":5270"} {
		port := addr[strings.LastIndexByte(addr, ':')+1:]
		if !slices.Contains(listed, port) {
			t.Errorf("port %s (%s) is not in the README's table of ports %v", port, addr, listed)
		}
	}
	cf, err := os.ReadFile(filepath.Join(moduleRoot, "dist", "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^EXPOSE (.*)$`).FindSubmatch(cf)
	if m == nil {
		t.Fatal("dist/Containerfile exposes no port")
	}
	for _, p := range strings.Fields(string(m[1])) {
		if !slices.Contains(listed, p) {
			t.Errorf("dist/Containerfile exposes %s, which the README's table of ports does not list", p)
		}
	}
}
