package web

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func newTest(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPeer(t *testing.T) {
	proxies, err := ParseProxies("http.trusted_proxies", []string{"10.0.0.0/8", "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	s := newTest(t, Config{TrustedProxies: proxies})
	for _, tc := range []struct {
		name, remote, xff, proto string
		tls                      bool
		addr                     string
		secure                   bool
	}{
		{"tls", "203.0.113.5:1234", "", "", true, "203.0.113.5:1234", true},
		{"plain from outside", "203.0.113.5:1234", "", "", false, "203.0.113.5:1234", false},
		{"xff not believed from outside", "203.0.113.5:1234", "198.51.100.1", "https", false, "203.0.113.5:1234", false},
		{"loopback", "127.0.0.1:99", "", "", false, "127.0.0.1:99", true},
		{"loopback v6", "[::1]:99", "", "", false, "[::1]:99", true},
		{"proxy", "10.1.2.3:5", "198.51.100.1", "https", false, "198.51.100.1", true},
		{"proxy without proto", "10.1.2.3:5", "198.51.100.1", "", false, "198.51.100.1", true},
		{"proxy says http", "10.1.2.3:5", "198.51.100.1", "http", false, "198.51.100.1", false},
		{"chain of proxies", "10.1.2.3:5", "6.6.6.6, 198.51.100.1, 192.0.2.7", "https", false, "198.51.100.1", true},
		{"forged first hop ignored", "10.1.2.3:5", "1.1.1.1,198.51.100.1", "", false, "198.51.100.1", true},
		{"garbage", "10.1.2.3:5", "nonsense", "", false, "10.1.2.3:5", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if tc.proto != "" {
				r.Header.Set("X-Forwarded-Proto", tc.proto)
			}
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			addr, secure := s.Peer(r)
			if addr != tc.addr || secure != tc.secure {
				t.Fatalf("got %s %v, want %s %v", addr, secure, tc.addr, tc.secure)
			}
		})
	}
	if _, err := ParseProxies("http.trusted_proxies", []string{"10.0.0.0/33"}); err == nil || !strings.Contains(err.Error(), "http.trusted_proxies") {
		t.Fatalf("bad CIDR: %v", err)
	}
}

func TestOrigins(t *testing.T) {
	if _, err := New(Config{CORSOrigins: []string{"chat.example.org"}}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "http.cors_origins") {
		t.Fatalf("bad origin accepted: %v", err)
	}
	s := newTest(t, Config{CORSOrigins: []string{"https://chat.example.org"}})
	for _, tc := range []struct {
		origin, host string
		ok           bool
	}{
		{"https://chat.example.org", "xmpp.example.org:5281", true},
		{"https://evil.example", "xmpp.example.org:5281", false},
		{"https://xmpp.example.org:5281", "xmpp.example.org:5281", true},
		{"null", "xmpp.example.org", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = tc.host
		if got := s.OriginAllowed(r, tc.origin); got != tc.ok {
			t.Errorf("%s on %s: %v", tc.origin, tc.host, got)
		}
	}
	any := newTest(t, Config{CORSOrigins: []string{"*"}})
	if !any.OriginAllowed(httptest.NewRequest("GET", "/", nil), "https://evil.example") {
		t.Error("* does not allow every origin")
	}
	// Preflight of the BOSH endpoint.
	s.MountBOSH(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<body/>")) }))
	r := httptest.NewRequest("OPTIONS", BOSHPath, nil)
	r.Header.Set("Origin", "https://chat.example.org")
	r.Header.Set("Access-Control-Request-Method", "POST")
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "https://chat.example.org" {
		t.Fatalf("preflight: %d %v", w.Code, w.Header())
	}
	r = httptest.NewRequest("POST", BOSHPath, nil)
	r.Header.Set("Origin", "https://evil.example")
	w = httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	if w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS headers for a refused origin: %v", w.Header())
	}
}

func TestHostMeta(t *testing.T) {
	s := newTest(t, Config{})
	s.MountWebSocket(http.NotFoundHandler())
	s.MountBOSH(http.NotFoundHandler())
	get := func(path string, tlsOn bool) (string, http.Header) {
		r := httptest.NewRequest("GET", path, nil)
		r.Host = "example.org:5281"
		r.RemoteAddr = "203.0.113.9:4000"
		if tlsOn {
			r.TLS = &tls.ConnectionState{}
		}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, r)
		return w.Body.String(), w.Header()
	}
	body, h := get("/.well-known/host-meta", true)
	want := "<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n" +
		"  <Link rel='urn:xmpp:alt-connections:xbosh' href='https://example.org:5281/http-bind'/>\n" +
		"  <Link rel='urn:xmpp:alt-connections:websocket' href='wss://example.org:5281/xmpp-websocket'/>\n</XRD>\n"
	if body != want || h.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("host-meta:\n%s", body)
	}
	body, _ = get("/.well-known/host-meta.json", false)
	var doc struct {
		Links []struct{ Rel, Href string }
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || len(doc.Links) != 2 || doc.Links[1].Href != "ws://example.org:5281/xmpp-websocket" {
		t.Fatalf("host-meta.json: %s %v", body, err)
	}
	p := newTest(t, Config{PublicURL: "https://xmpp.example.org/chat/"})
	p.MountWebSocket(http.NotFoundHandler())
	r := httptest.NewRequest("GET", "/.well-known/host-meta.json", nil)
	w := httptest.NewRecorder()
	p.Handler().ServeHTTP(w, r)
	if !strings.Contains(w.Body.String(), `"wss://xmpp.example.org/chat/xmpp-websocket"`) {
		t.Fatalf("behind a proxy: %s", w.Body.String())
	}
}

// The listener serves the health endpoints; readiness follows the checks.
func TestHealth(t *testing.T) {
	s := newTest(t, Config{})
	failing := errors.New("database unreachable")
	var storeErr error
	s.AddCheck("storage", func(context.Context) error { return storeErr })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + l.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(HealthPath); code != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	if code, body := get(ReadyPath + "?verbose"); code != 200 || body != "storage: ok\nok\n" {
		t.Fatalf("readyz: %d %q", code, body)
	}
	storeErr = failing
	if code, body := get(ReadyPath); code != 503 || body != "storage: database unreachable\n" {
		t.Fatalf("readyz failing: %d %q", code, body)
	}
	if code, _ := get(WebSocketPath); code != 404 {
		t.Fatalf("unmounted endpoint: %d", code)
	}
}

// FuzzForwardedFor: any header is taken apart without panicking, and the
// address found is one of the header's or the socket's.
func FuzzForwardedFor(f *testing.F) {
	f.Add("198.51.100.1, 10.0.0.1", "https")
	f.Add(",,, ::ffff:10.0.0.2 ,", "")
	proxies, _ := ParseProxies("x", []string{"10.0.0.0/8", "::1"})
	s := &Server{cfg: Config{TrustedProxies: proxies}}
	f.Fuzz(func(t *testing.T, xff, proto string) {
		r := &http.Request{Header: http.Header{"X-Forwarded-For": {xff}, "X-Forwarded-Proto": {proto}}, RemoteAddr: "10.9.9.9:1"}
		addr, _ := s.Peer(r)
		if addr != r.RemoteAddr && !strings.Contains(xff, strings.TrimPrefix(addr, "::ffff:")) {
			// Unmapped addresses print differently from their source.
			if _, err := net.ResolveIPAddr("ip", addr); err != nil {
				t.Fatalf("address %q from %q", addr, xff)
			}
		}
	})
}
