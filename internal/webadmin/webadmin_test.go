package webadmin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestServes(t *testing.T) {
	h := Handler()
	for _, c := range []struct {
		method, path string
		status       int
		contentType  string
		contains     string
	}{
		{"GET", "/admin/", 200, "text/html", "admin.js"},
		{"GET", "/admin/admin.js", 200, "text/javascript", "/login"},
		{"GET", "/admin/admin.css", 200, "text/css", "body"},
		{"GET", "/admin/nothing", 404, "", ""},
		{"POST", "/admin/", 405, "", ""},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		if w.Code != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, w.Code, c.status)
			continue
		}
		if c.status != http.StatusOK {
			continue
		}
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, c.contentType) {
			t.Errorf("%s: Content-Type %q", c.path, ct)
		}
		if !strings.Contains(w.Body.String(), c.contains) {
			t.Errorf("%s: no %q", c.path, c.contains)
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: CSP %q", c.path, csp)
		}
	}
}

// TestNothingFromElsewhere: the page loads no file from another origin
// and has no inline script, which the policy would block.
func TestNothingFromElsewhere(t *testing.T) {
	for _, name := range []string{"static/index.html", "static/admin.js", "static/admin.css"} {
		b, err := files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, bad := range []string{"http://", "https://", "//cdn", "<script>", "onclick=", "innerHTML"} {
			if strings.Contains(s, bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
}
