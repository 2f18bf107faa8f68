package e2e

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// browserDir holds the npm project of the browser tests: Converse.js and
// playwright-core, pinned in package.json and package-lock.json and
// installed by test.sh with npm ci.
func browserDir() string { return filepath.Join(moduleRoot, "e2e", "testdata", "browser") }

// requireBrowser checks for Debian's chromium, node and the npm modules.
func requireBrowser(t *testing.T) {
	t.Helper()
	requireTools(t, "chromium", "node", "npm", "slixmpp")
	for _, m := range []string{"converse.js/dist/converse.min.js", "playwright-core/package.json"} {
		if _, err := os.Stat(filepath.Join(browserDir(), "node_modules", m)); err != nil {
			msg := "the npm modules of the browser tests are not installed: run npm ci --ignore-scripts in e2e/testdata/browser (test.sh does)"
			if e2eRequired() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// startPage serves the test page and Converse.js's files on loopback.
func startPage(t *testing.T) (base string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/converse/", http.StripPrefix("/converse/", http.FileServer(http.Dir(filepath.Join(browserDir(), "node_modules", "converse.js", "dist")))))
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(browserDir(), "converse.html"))
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

// artifactDir is where screenshots go: $E2E_ARTIFACTS if set (CI
// keeps it), else the test's temporary directory.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("E2E_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestBrowserConverse runs Converse.js from npm in headless chromium
// against a real server: it logs in, shows a slixmpp contact's presence in
// the roster, exchanges a message with it and saves a screenshot. Each
// row is a transport.
func TestBrowserConverse(t *testing.T) {
	requireBrowser(t)
	page := startPage(t)
	w := startWebServer(t, "AMBROSIA_HTTP_CORS_ORIGINS="+page)
	for _, tc := range []struct {
		name    string
		setting string // Converse's setting that picks the transport
		path    string
	}{
		{"websocket", "websocket_url", "/xmpp-websocket"},
		{"bosh", "bosh_service_url", "/http-bind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			endpoint := w.BaseURL() + tc.path
			if tc.setting == "websocket_url" {
				endpoint = w.WSURL()
			}
			web, peer := "web-"+tc.name+"@localhost", "peer-"+tc.name+"@localhost"
			addUser(t, w.Server, web, alicePass)
			addUser(t, w.Server, peer, bobPass)
			body, reply := "hello from converse over "+tc.name, "hello back from slixmpp"
			bob := startPython(t, "browser_peer", append(w.clientArgs(false), "--jid", peer, "--password", bobPass,
				"--peer", web, "--reply", reply, "--timeout", "120")...)
			bob.waitLine(t, "ready", 30*time.Second)

			q := url.Values{"setting": {tc.setting}, "url": {endpoint}, "jid": {web}, "password": {alicePass}}
			shot := filepath.Join(artifactDir(t), "converse-"+tc.name+".png")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", "converse_test.mjs", page+"/?"+q.Encode(), peer, body, reply, shot)
			cmd.Dir = browserDir()
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "\nok\n") {
				t.Fatalf("converse in chromium: %v\n%s", err, out)
			}
			t.Logf("converse in chromium:\n%s", out)
			if got := bob.waitPrefix(t, "got: ", 10*time.Second); got != body {
				t.Fatalf("slixmpp got %q, want %q", got, body)
			}
			if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
				t.Fatalf("screenshot: %v", err)
			}
			t.Logf("screenshot: %s", shot)
		})
	}
}
