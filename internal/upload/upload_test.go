package upload

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// fakeRouter records what the service routes.
type fakeRouter struct {
	mu     sync.Mutex
	routed []router.Stanza
	reg    map[string]router.Component
}

func (r *fakeRouter) Register(d string, c router.Component) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reg == nil {
		r.reg = map[string]router.Component{}
	}
	r.reg[d] = c
	return nil
}

func (r *fakeRouter) Unregister(d string, c router.Component) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.reg, d)
}

func (r *fakeRouter) Route(_ context.Context, s router.Stanza) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routed = append(r.routed, s)
}

func (r *fakeRouter) last(t *testing.T) router.Stanza {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.routed) == 0 {
		t.Fatal("nothing routed")
	}
	s := r.routed[len(r.routed)-1]
	r.routed = nil
	return s
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	svc   *Service
	r     *fakeRouter
	clock *clock
	http  *httptest.Server
	dir   string
}

const (
	testMax   = 1000
	testQuota = 2500
)

func newFixture(t *testing.T, dir string, clk *clock) *fixture {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if clk == nil {
		clk = &clock{t: time.Unix(1_700_000_000, 0)}
	}
	f := &fixture{r: &fakeRouter{}, clock: clk, dir: dir}
	f.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.svc.Handler().ServeHTTP(w, r) }))
	t.Cleanup(f.http.Close)
	cfg := DefaultConfig()
	cfg.Domains = []string{"example.org", "example.net"}
	cfg.Dir = dir
	cfg.Addr = ""
	cfg.PublicURL = f.http.URL + "/files"
	cfg.MaxFileSize = testMax
	cfg.Quota = testQuota
	cfg.ExpireAfter = time.Hour
	svc, err := New(cfg, Deps{Router: f.r, Log: slog.New(slog.DiscardHandler), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

// iq sends an IQ from from to to and returns the answer.
func (f *fixture) iq(t *testing.T, from, to, payload string) *xmlstream.Element {
	t.Helper()
	raw := `<iq type='get' id='q1' from='` + from + `' to='` + to + `'>` + payload + `</iq>`
	el, err := xmlstream.ParseStanza([]byte(raw), xmlstream.NSClient)
	if err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	f.svc.HandleStanza(context.Background(), router.Stanza{El: el, From: jid.MustParse(from), To: jid.MustParse(to)})
	out := f.r.last(t)
	if out.To.String() != from || out.From.String() != to || out.El.Attr("id") != "q1" {
		t.Fatalf("answer addressed %s -> %s: %s", out.From, out.To, out.El)
	}
	return out.El
}

func request(name string, size int64, ctype string) string {
	s := `<request xmlns='urn:xmpp:http:upload:0' filename='` + name + `' size='` + strconv.FormatInt(size, 10) + `'`
	if ctype != "" {
		s += ` content-type='` + ctype + `'`
	}
	return s + `/>`
}

type slotInfo struct{ put, get, auth string }

// slot requests a slot as alice@example.org and fails unless one comes.
func (f *fixture) slot(t *testing.T, name string, size int64, ctype string) slotInfo {
	t.Helper()
	r := f.iq(t, "alice@example.org/phone", "upload.example.org", request(name, size, ctype))
	sl := r.Child(NS, "slot")
	if r.Attr("type") != "result" || sl == nil {
		t.Fatalf("no slot: %s", r)
	}
	put, get := sl.Child(NS, "put"), sl.Child(NS, "get")
	h := put.Child(NS, "header")
	if h == nil || h.Attr("name") != "Authorization" || len(put.Children()) != 1 {
		t.Fatalf("put headers: %s", put)
	}
	return slotInfo{put: put.Attr("url"), get: get.Attr("url"), auth: h.Text()}
}

func doPut(t *testing.T, url, auth, ctype string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func doGet(t *testing.T, method, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func errorOf(t *testing.T, r *xmlstream.Element) (cond, text string, e *xmlstream.Element) {
	t.Helper()
	if r.Attr("type") != "error" {
		t.Fatalf("want an error, got %s", r)
	}
	e = r.Child(r.Space, "error")
	if te := e.Child(stanza.NSStanzas, "text"); te != nil {
		text = te.Text()
	}
	return stanza.ErrorCondition(r), text, e
}

func TestDiscoInfo(t *testing.T) {
	f := newFixture(t, "", nil)
	r := f.iq(t, "alice@example.org/phone", "upload.example.org", `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
	q := r.Child(stanza.NSDiscoInfo, "query")
	id := q.Child(stanza.NSDiscoInfo, "identity")
	if id.Attr("category") != "store" || id.Attr("type") != "file" {
		t.Errorf("identity: %s", id)
	}
	var features []string
	for _, c := range q.Children() {
		if c.Local == "feature" {
			features = append(features, c.Attr("var"))
		}
	}
	if !strings.Contains(strings.Join(features, " "), NS) {
		t.Errorf("features %v lack %s", features, NS)
	}
	fields := map[string]string{}
	for _, fe := range q.Child(nsData, "x").Children() {
		fields[fe.Attr("var")] = fe.Child(nsData, "value").Text()
	}
	if fields["FORM_TYPE"] != NS || fields["max-file-size"] != strconv.Itoa(testMax) {
		t.Errorf("form: %v", fields)
	}
	// Both domains are served, by one service.
	if got := len(f.svc.Domains()); got != 2 {
		t.Errorf("%d service domains", got)
	}
	items := f.iq(t, "bob@elsewhere.example/x", "upload.example.net", `<query xmlns='http://jabber.org/protocol/disco#items'/>`)
	if items.Attr("type") != "result" {
		t.Errorf("disco#items: %s", items)
	}
}

func TestSlotRequestErrors(t *testing.T) {
	tests := []struct {
		name, from, to, payload, cond, text string
	}{
		{"remote user", "eve@evil.example/x", "upload.example.org", request("a.txt", 10, ""), stanza.Forbidden, "Only users of example.org"},
		{"other local domain", "bob@example.net/x", "upload.example.org", request("a.txt", 10, ""), stanza.Forbidden, ""},
		{"the server itself", "example.org", "upload.example.org", request("a.txt", 10, ""), stanza.Forbidden, ""},
		{"no filename", "alice@example.org/p", "upload.example.org", `<request xmlns='urn:xmpp:http:upload:0' size='10'/>`, stanza.BadRequest, "filename"},
		{"slash in filename", "alice@example.org/p", "upload.example.org", request("../secret", 10, ""), stanza.BadRequest, "Invalid filename"},
		{"dot dot", "alice@example.org/p", "upload.example.org", request("..", 10, ""), stanza.BadRequest, "Invalid filename"},
		{"control character", "alice@example.org/p", "upload.example.org", request("a&#x9;b", 10, ""), stanza.BadRequest, "Invalid filename"},
		{"no size", "alice@example.org/p", "upload.example.org", `<request xmlns='urn:xmpp:http:upload:0' filename='a.txt'/>`, stanza.BadRequest, "size"},
		{"size zero", "alice@example.org/p", "upload.example.org", request("a.txt", 0, ""), stanza.BadRequest, "size"},
		{"negative size", "alice@example.org/p", "upload.example.org", request("a.txt", -5, ""), stanza.BadRequest, "size"},
		{"size not a number", "alice@example.org/p", "upload.example.org", `<request xmlns='urn:xmpp:http:upload:0' filename='a.txt' size='1e3'/>`, stanza.BadRequest, "size"},
		{"bad content type", "alice@example.org/p", "upload.example.org", request("a.txt", 10, "not a type"), stanza.BadRequest, "content-type"},
		{"too large", "alice@example.org/p", "upload.example.org", request("a.txt", testMax+1, ""), stanza.NotAcceptable, "limit is 1000"},
		{"unknown request", "alice@example.org/p", "upload.example.org", `<query xmlns='jabber:iq:version'/>`, stanza.ServiceUnavailable, ""},
		{"to a user", "alice@example.org/p", "x@upload.example.org", request("a.txt", 10, ""), stanza.ServiceUnavailable, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "", nil)
			cond, text, e := errorOf(t, f.iq(t, tc.from, tc.to, tc.payload))
			if cond != tc.cond || !strings.Contains(text, tc.text) {
				t.Fatalf("got %s %q, want %s %q", cond, text, tc.cond, tc.text)
			}
			if cond == stanza.NotAcceptable {
				tl := e.Child(NS, "file-too-large")
				if tl == nil || tl.Child(NS, "max-file-size").Text() != strconv.Itoa(testMax) {
					t.Fatalf("file-too-large: %s", e)
				}
			}
			if f.svc.store.usage("alice@example.org") != 0 {
				t.Fatal("a refused request counts against the quota")
			}
		})
	}
}

func TestQuota(t *testing.T) {
	f := newFixture(t, "", nil)
	f.slot(t, "a.bin", 1000, "")
	f.slot(t, "b.bin", 1000, "")
	// 2000 of 2500 reserved: 500 more fit, 501 do not.
	cond, text, e := errorOf(t, f.iq(t, "alice@example.org/p", "upload.example.org", request("c.bin", 501, "")))
	if cond != stanza.ResourceConstraint || !strings.Contains(text, "quota exceeded: 2000 of 2500 bytes") {
		t.Fatalf("got %s %q", cond, text)
	}
	// The first slot's expiry frees enough.
	if r := e.Child(NS, "retry"); r == nil || r.Attr("stamp") != f.clock.Now().Add(DefaultSlotTimeout).UTC().Format(time.RFC3339) {
		t.Fatalf("retry: %s", e)
	}
	f.slot(t, "c.bin", 500, "")
	// Another user has a quota of their own.
	if r := f.iq(t, "bob@example.org/p", "upload.example.org", request("d.bin", 1000, "")); r.Attr("type") != "result" {
		t.Fatalf("bob: %s", r)
	}
	// Unused slots stop counting when they expire.
	f.clock.Add(DefaultSlotTimeout)
	f.svc.store.sweep(f.clock.Now())
	if u := f.svc.store.usage("alice@example.org"); u != 0 {
		t.Fatalf("usage after the slots expired: %d", u)
	}
	f.slot(t, "e.bin", 1000, "")
}

func TestUploadAndDownload(t *testing.T) {
	f := newFixture(t, "", nil)
	tests := []struct {
		name, ctype, disposition string
	}{
		{"photo.png", "image/png", `inline; filename=photo.png`},
		{"notes.txt", "text/plain", `inline; filename=notes.txt`},
		{"page.html", "text/html", `attachment; filename=page.html`},
		{"résumé final.pdf", "application/pdf", `attachment; filename*=utf-8''r%C3%A9sum%C3%A9%20final.pdf`},
		{"data", "", `attachment; filename=data`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte{byte(i), 'x', 0}, 100)
			sl := f.slot(t, tc.name, int64(len(body)), tc.ctype)
			if sl.put != sl.get || !strings.HasPrefix(sl.put, f.http.URL+"/files/upload/") {
				t.Fatalf("urls %q %q", sl.put, sl.get)
			}
			if resp := doPut(t, sl.put, sl.auth, tc.ctype, body); resp.StatusCode != http.StatusCreated {
				t.Fatalf("PUT: %s", resp.Status)
			}
			resp, got := doGet(t, http.MethodGet, sl.get)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
				t.Fatalf("GET: %s, %d bytes", resp.Status, len(got))
			}
			want := map[string]string{
				"Content-Type":                tc.ctype,
				"Content-Length":              strconv.Itoa(len(body)),
				"Content-Disposition":         tc.disposition,
				"X-Content-Type-Options":      "nosniff",
				"Content-Security-Policy":     "default-src 'none'; frame-ancestors 'none'",
				"Access-Control-Allow-Origin": "*",
			}
			if tc.ctype == "" {
				want["Content-Type"] = defaultContentType
			}
			for k, v := range want {
				if g := resp.Header.Get(k); g != v {
					t.Errorf("%s: %q, want %q", k, g, v)
				}
			}
			resp, got = doGet(t, http.MethodHead, sl.get)
			if resp.StatusCode != http.StatusOK || len(got) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
				t.Fatalf("HEAD: %s, %d bytes, %v", resp.Status, len(got), resp.Header)
			}
			// A slot is good for one upload.
			if resp := doPut(t, sl.put, sl.auth, tc.ctype, body); resp.StatusCode != http.StatusConflict {
				t.Fatalf("second PUT: %s", resp.Status)
			}
			// The name is part of the URL.
			if resp, _ := doGet(t, http.MethodGet, strings.TrimSuffix(sl.get, "data")+"other"); resp.StatusCode != http.StatusNotFound {
				t.Fatalf("GET under another name: %s", resp.Status)
			}
		})
	}
}

func TestPutRefused(t *testing.T) {
	body := []byte("0123456789")
	tests := []struct {
		name   string
		status int
		put    func(t *testing.T, f *fixture, sl slotInfo) *http.Response
	}{
		{"no authorization", http.StatusUnauthorized, func(t *testing.T, f *fixture, sl slotInfo) *http.Response {
			return doPut(t, sl.put, "", "text/plain", body)
		}},
		{"not bearer", http.StatusUnauthorized, func(t *testing.T, f *fixture, sl slotInfo) *http.Response {
			return doPut(t, sl.put, "Basic "+strings.TrimPrefix(sl.auth, "Bearer "), "text/plain", body)
		}},
		{"forged signature", http.StatusForbidden, func(t *testing.T, f *fixture, sl slotInfo) *http.Response {
			a := []byte(sl.auth)
			a[len(a)-2] ^= 1
			return doPut(t, sl.put, string(a), "text/plain", body)
		}},
		{"claims changed", http.StatusForbidden, func(t *testing.T, f *fixture, sl slotInfo) *http.Response {
			// A token of the right shape whose claims were re-encoded
			// with a larger size but the old MAC.
			tok, _ := bearerToken(sl.auth)
			c, err := verifyToken(f.svc.store.secret, tok)
			if err != nil {
				t.Fatal(err)
			}
			c.Size = 20
			forged := signToken([]byte("another secret of thirty-two bytes"), c)
			_, oldMAC, _ := strings.Cut(tok, ".")
			payload, _, _ := strings.Cut(forged, ".")
			return doPut(t, sl.put, "Bearer "+payload+"."+oldMAC, "text/plain", append(body, body...))
		}},
		{"signed with another secret", http.StatusForbidden, func(t *testing.T, f *fixture, sl slotInfo) *http.Response {
			tok, _ := bearerToken(sl.auth)
			c, _ := verifyToken(f.svc.store.secret, tok)
			return doPut(t, sl.put, "Bearer "+signToken(make([]byte, 32), c), "text/plain", body)
		}},
		{"another slot's path", http.StatusForbidden, func(t *testing.T, f *fixture, sl slotInfo) *http.Response {
			other := f.slot(t, "note.txt", int64(len(body)), "text/plain")
			return doPut(t, other.put, sl.auth, "text/plain", body)
		}},
		{"another name", http.StatusForbidden, func(t *testing.T, f *fixture, sl slotInfo) *http.Response {
			return doPut(t, strings.TrimSuffix(sl.put, "note.txt")+"evil.html", sl.auth, "text/plain", body)
		}},
		{"another size", http.StatusBadRequest, func(t *testing.T, f *fixture, sl slotInfo) *http.Response {
			return doPut(t, sl.put, sl.auth, "text/plain", body[:5])
		}},
		{"longer body", http.StatusBadRequest, func(t *testing.T, f *fixture, sl slotInfo) *http.Response {
			return doPut(t, sl.put, sl.auth, "text/plain", append(body, 'x'))
		}},
		{"another content type", http.StatusBadRequest, func(t *testing.T, f *fixture, sl slotInfo) *http.Response {
			return doPut(t, sl.put, sl.auth, "text/html", body)
		}},
		{"expired slot", http.StatusForbidden, func(t *testing.T, f *fixture, sl slotInfo) *http.Response {
			f.clock.Add(DefaultSlotTimeout)
			return doPut(t, sl.put, sl.auth, "text/plain", body)
		}},
		{"chunked body larger than the slot", http.StatusRequestEntityTooLarge, func(t *testing.T, f *fixture, sl slotInfo) *http.Response {
			// No Content-Length: the body is counted as it comes.
			req, _ := http.NewRequest(http.MethodPut, sl.put, io.MultiReader(bytes.NewReader(body), strings.NewReader("more")))
			req.ContentLength = -1
			req.Header.Set("Authorization", sl.auth)
			req.Header.Set("Content-Type", "text/plain")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}},
		{"chunked body shorter than the slot", http.StatusBadRequest, func(t *testing.T, f *fixture, sl slotInfo) *http.Response {
			req, _ := http.NewRequest(http.MethodPut, sl.put, io.MultiReader(bytes.NewReader(body[:3])))
			req.ContentLength = -1
			req.Header.Set("Authorization", sl.auth)
			req.Header.Set("Content-Type", "text/plain")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}},
		{"POST", http.StatusMethodNotAllowed, func(t *testing.T, f *fixture, sl slotInfo) *http.Response {
			req, _ := http.NewRequest(http.MethodPost, sl.put, bytes.NewReader(body))
			req.Header.Set("Authorization", sl.auth)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "", nil)
			sl := f.slot(t, "note.txt", int64(len(body)), "text/plain")
			if resp := tc.put(t, f, sl); resp.StatusCode != tc.status {
				t.Fatalf("PUT: %s, want %d", resp.Status, tc.status)
			}
			// Nothing was kept: not served, nothing on disk but the secret.
			if resp, _ := doGet(t, http.MethodGet, sl.get); resp.StatusCode != http.StatusNotFound {
				t.Fatalf("GET after a refused PUT: %s", resp.Status)
			}
			ents, _ := os.ReadDir(f.dir)
			if len(ents) != 1 || ents[0].Name() != secretFile {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Fatalf("store holds %v", names)
			}
			// A refused PUT does not use the slot up, unless it expired.
			if tc.name != "expired slot" {
				if resp := doPut(t, sl.put, sl.auth, "text/plain", body); resp.StatusCode != http.StatusCreated {
					t.Fatalf("PUT after a refused one: %s", resp.Status)
				}
			}
		})
	}
}

// TestPutBodyLongerThanContentLength drives the handler directly: over a
// real connection, bytes past Content-Length are the next request.
func TestPutBodyLongerThanContentLength(t *testing.T) {
	f := newFixture(t, "", nil)
	sl := f.slot(t, "a.bin", 10, "")
	req := httptest.NewRequest(http.MethodPut, sl.put, strings.NewReader("0123456789 and more"))
	req.ContentLength = 10
	req.Header.Set("Authorization", sl.auth)
	w := httptest.NewRecorder()
	f.svc.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", w.Code)
	}
	if _, ok := f.svc.store.lookup(strings.Split(strings.TrimPrefix(sl.put, f.http.URL+"/files"+pathPrefix), "/")[0], f.clock.Now()); ok {
		t.Fatal("file kept")
	}
}

func TestPathTraversal(t *testing.T) {
	f := newFixture(t, "", nil)
	secret, err := os.ReadFile(filepath.Join(f.dir, secretFile))
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(filepath.Dir(f.dir), "outside")
	sl := f.slot(t, "a.txt", 3, "")
	id := strings.Split(strings.TrimPrefix(sl.put, f.http.URL+"/files"+pathPrefix), "/")[0]
	paths := []string{
		"/files/upload/../upload/secret",
		"/files/upload/secret",
		"/files/upload/" + id + "/../secret",
		"/files/upload/" + id + "/..%2fsecret",
		"/files/upload/" + id + "/%2e%2e%2f%2e%2e%2foutside",
		"/files/upload/..%2f..%2f" + id + "/a.txt",
		"/files/upload/" + id + "%00/a.txt",
		"/files/upload/" + id + ".json/a.txt",
		"/files/upload/" + id + ".part/a.txt",
		"/files/upload/" + id + "/a.txt/../../secret",
		"/files/upload/" + id,
		"/files/upload/" + id + "/",
		"/files/secret",
		"/secret",
		"/upload/../secret",
	}
	for _, p := range paths {
		for _, method := range []string{http.MethodGet, http.MethodPut} {
			req, err := http.NewRequest(method, f.http.URL+p, strings.NewReader("abc"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", sl.auth)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s: %s", method, p, resp.Status)
			}
			if bytes.Contains(b, secret) {
				t.Errorf("%s %s: secret served", method, p)
			}
		}
	}
	if _, err := os.Stat(outside); err == nil {
		t.Error("a file was written outside the store")
	}
	// The slot is still good for its own path.
	if resp := doPut(t, sl.put, sl.auth, "", []byte("abc")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", resp.Status)
	}
}

func TestCORSPreflight(t *testing.T) {
	f := newFixture(t, "", nil)
	sl := f.slot(t, "a.txt", 3, "")
	req, _ := http.NewRequest(http.MethodOptions, sl.put, nil)
	req.Header.Set("Origin", "https://web.example")
	req.Header.Set("Access-Control-Request-Method", "PUT")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode/100 != 2 || h.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "PUT") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Content-Type") {
		t.Fatalf("preflight: %s %v", resp.Status, h)
	}
}

func TestExpiry(t *testing.T) {
	f := newFixture(t, "", nil)
	sl := f.slot(t, "a.txt", 3, "")
	if resp := doPut(t, sl.put, sl.auth, "", []byte("abc")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", resp.Status)
	}
	f.clock.Add(time.Hour - time.Second)
	if n := f.svc.store.sweep(f.clock.Now()); n != 0 {
		t.Fatalf("swept %d files before they expired", n)
	}
	if resp, _ := doGet(t, http.MethodGet, sl.get); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET before expiry: %s", resp.Status)
	}
	f.clock.Add(time.Second)
	// Expired files are not served even before the sweeper runs.
	if resp, _ := doGet(t, http.MethodGet, sl.get); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET after expiry: %s", resp.Status)
	}
	if n := f.svc.store.sweep(f.clock.Now()); n != 1 {
		t.Fatalf("swept %d files", n)
	}
	ents, _ := os.ReadDir(f.dir)
	if len(ents) != 1 {
		t.Fatalf("%d entries left in the store", len(ents))
	}
	if u := f.svc.store.usage("alice@example.org"); u != 0 {
		t.Fatalf("usage %d after expiry", u)
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, dir, nil)
	stored := f.slot(t, "a.txt", 1000, "")
	if resp := doPut(t, stored.put, stored.auth, "", bytes.Repeat([]byte("a"), 1000)); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", resp.Status)
	}
	pending := f.slot(t, "b.txt", 1000, "")
	// Traces of a crash: a partial upload, a record without data, data
	// without a record, a record of the wrong size.
	for name, content := range map[string]string{
		newID() + partExt:                    "partial",
		newID() + metaExt:                    `{"name":"x","type":"a/b","size":3,"owner":"alice@example.org"}`,
		newID():                              "orphan",
		"AAAAAAAAAAAAAAAAAAAAAAAA":           "abcd",
		"AAAAAAAAAAAAAAAAAAAAAAAA" + metaExt: `{"name":"x","type":"a/b","size":3,"owner":"alice@example.org"}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	g := newFixture(t, dir, f.clock)
	if u := g.svc.store.usage("alice@example.org"); u != 1000 {
		t.Fatalf("usage after restart: %d, want 1000", u)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Fatalf("%d entries after restart, want secret, file and record", len(ents))
	}
	// The file is still served, under the same URL path.
	u := g.http.URL + strings.TrimPrefix(stored.get, f.http.URL)
	if resp, b := doGet(t, http.MethodGet, u); resp.StatusCode != http.StatusOK || len(b) != 1000 {
		t.Fatalf("GET after restart: %s", resp.Status)
	}
	// The secret was kept, so a slot granted before the restart works,
	// and is counted against the quota then.
	pu := g.http.URL + strings.TrimPrefix(pending.put, f.http.URL)
	if resp := doPut(t, pu, pending.auth, "", bytes.Repeat([]byte("b"), 1000)); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT of an old slot: %s", resp.Status)
	}
	cond, _, _ := errorOf(t, g.iq(t, "alice@example.org/p", "upload.example.org", request("c.txt", 501, "")))
	if cond != stanza.ResourceConstraint {
		t.Fatalf("over quota after restart: %s", cond)
	}
}

func TestRunRegistersAndServes(t *testing.T) {
	dir := t.TempDir()
	r := &fakeRouter{}
	cfg := DefaultConfig()
	cfg.Domains = []string{"example.org"}
	cfg.Dir = dir
	cfg.Addr = ""
	cfg.PlainAddr = "127.0.0.1:0"
	cfg.PublicURL = "https://files.example.org/xmpp/"
	svc, err := New(cfg, Deps{Router: r, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- svc.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		_, ok := r.reg["upload.example.org"]
		r.mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not registered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := svc.fileURL("upload.example.org", "ID", "a b.txt")
	if got != "https://files.example.org/xmpp/upload/ID/a%20b.txt" {
		t.Errorf("URL %s", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(r.reg) != 0 {
		t.Fatal("still registered after Run returned")
	}
}

func TestDefaultURL(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{":5443", "https://upload.example.org:5443/upload/ID/a.txt"},
		{"[::]:443", "https://upload.example.org/upload/ID/a.txt"},
	} {
		cfg := DefaultConfig()
		cfg.Domains = []string{"example.org"}
		cfg.Dir = t.TempDir()
		cfg.Addr = tc.addr
		if _, err := New(cfg, Deps{Router: &fakeRouter{}, Log: slog.New(slog.DiscardHandler)}); err == nil {
			t.Fatal("New without TLS for an HTTPS listener succeeded")
		}
		svc, err := New(cfg, Deps{Router: &fakeRouter{}, Log: slog.New(slog.DiscardHandler), TLS: &tls.Config{}})
		if err != nil {
			t.Fatal(err)
		}
		if got := svc.fileURL("upload.example.org", "ID", "a.txt"); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.addr, got, tc.want)
		}
	}
}
