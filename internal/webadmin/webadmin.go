// Package webadmin is the web admin page: static files, served by the
// binary, that call the HTTP API (package httpapi) from the browser. It
// has no build step and loads nothing from elsewhere, so that it works
// on a server without Internet access and a strict Content Security
// Policy can forbid everything else.
package webadmin

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// Prefix is the path the page is served under.
const Prefix = "/admin/"

// csp allows the page's own files and calls to its own origin only; no
// inline script, no frame.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Handler serves the page under Prefix; the HTTP API must be served
// at /api/v1/ on the same origin.
func Handler() http.Handler {
	static, _ := fs.Sub(files, "static") // the directory is embedded
	fileServer := http.StripPrefix(Prefix, http.FileServerFS(static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})
}
