package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBrowserAdmin opens the web admin page, served on the web listener
// with the API, in headless chromium: an administrator logs in with their
// account's password, sees a user and their online session, and kicks it
// with a reason, which the user's client reads in its stream error.
func TestBrowserAdmin(t *testing.T) {
	requireBrowser(t)
	const root, rootPass = "root@localhost", "root-Secret-7"
	w := startWebServer(t, "AMBROSIA_HTTP_API=true", "AMBROSIA_API_ADDR=", "AMBROSIA_API_ADMINS="+root)
	addUser(t, w.Server, root, rootPass)
	addUser(t, w.Server, alice, alicePass)
	phone := floodClient(t, w.Server, alice, alicePass, "phone")

	shot := filepath.Join(artifactDir(t), "admin.png")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const reason = "Maintenance at noon"
	cmd := exec.CommandContext(ctx, "node", "admin_test.mjs", w.BaseURL()+"/admin/", root, rootPass, alice, alice+"/phone", reason, shot)
	cmd.Dir = browserDir()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "\nok\n") {
		t.Fatalf("the admin page in chromium: %v\n%s", err, out)
	}
	t.Logf("the admin page in chromium:\n%s", out)
	e, err := phone.expect(regexp.MustCompile(`(?s)<(?:stream:)?error[\s>].*?</(?:stream:)?error>`))
	if err != nil {
		t.Fatalf("the kicked session's client: %v", err)
	}
	if !streamError("policy-violation").MatchString(e) || !strings.Contains(e, ">"+reason+"</text>") {
		t.Errorf("stream error %s, want policy-violation with the reason as its text", e)
	}
	if !strings.Contains(w.Log(), `"msg":"admin login"`) {
		t.Error("the administrator's login is not in the log")
	}
	if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
		t.Fatalf("screenshot: %v", err)
	}
}
