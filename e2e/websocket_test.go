package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// webServer is a server with the [http] listener on a loopback port.
type webServer struct {
	*Server
	HTTPPort int
	Roots    *x509.CertPool
}

// WSURL is the WebSocket endpoint.
func (w *webServer) WSURL() string {
	return "wss://localhost:" + strconv.Itoa(w.HTTPPort) + "/xmpp-websocket"
}

// BaseURL is the listener's HTTPS base.
func (w *webServer) BaseURL() string { return "https://localhost:" + strconv.Itoa(w.HTTPPort) }

// startWebServer starts a server whose [http] listener serves HTTPS with
// the generated certificate; env adds settings.
func startWebServer(t *testing.T, env ...string) *webServer {
	t.Helper()
	return startWebServerOn(t, freePort(t), env...)
}

// startWebServerOn is startWebServer with the listener on port.
func startWebServerOn(t *testing.T, port int, env ...string) *webServer {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	s := startServer(t, ServerOptions{Env: append([]string{"AMBROSIA_HTTP_ADDR=127.0.0.1:" + strconv.Itoa(port)}, env...)})
	waitListening(t, "127.0.0.1:"+strconv.Itoa(port), s.done, "ambrosia http", func() string { return "" })
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return &webServer{Server: s, HTTPPort: port, Roots: roots}
}

func (w *webServer) httpGet(t *testing.T, path string, hdr http.Header) (int, string, http.Header) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: w.Roots}}}
	req, err := http.NewRequest("GET", w.BaseURL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// wsClient logs in over the WebSocket endpoint with SCRAM-SHA-256-PLUS
// (tls-exporter) and binds res unless it is "".
func (w *webServer) wsClient(t *testing.T, user, pass, res string) (*xmpptest.Client, *xmpptest.WSConn) {
	t.Helper()
	ws, st, err := xmpptest.DialWebSocket(w.WSURL(), w.Roots, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := xmpptest.NewWebSocketClient(t, ws, st, domain)
	c.Open()
	if cond := c.AuthSCRAM("SCRAM-SHA-256-PLUS", user, pass, "tls-exporter"); cond != "" {
		t.Fatalf("websocket login: %s", cond)
	}
	if res != "" {
		c.Bind(res)
	}
	return c, ws
}

// TestWebSocket drives the WebSocket endpoint of a real server by hand:
// health and discovery, a login with channel binding, messages with a TCP
// user, a resumption after the socket is cut, an oversized frame and a
// page of a foreign origin.
func TestWebSocket(t *testing.T) {
	w := startWebServer(t)
	addUser(t, w.Server, alice, alicePass)
	addUser(t, w.Server, bob, bobPass)

	if code, body, _ := w.httpGet(t, "/healthz", nil); code != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	if code, body, _ := w.httpGet(t, "/readyz?verbose", nil); code != 200 || !strings.Contains(body, "c2s: ok") || !strings.Contains(body, "storage: ok") {
		t.Fatalf("readyz: %d %q", code, body)
	}
	if code, body, h := w.httpGet(t, "/.well-known/host-meta", nil); code != 200 || !strings.Contains(body, "href='"+w.WSURL()+"'") || h.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("host-meta: %d %q", code, body)
	}
	if code, body, _ := w.httpGet(t, "/.well-known/host-meta.json", nil); code != 200 || !strings.Contains(body, `"href":"`+w.WSURL()+`"`) {
		t.Fatalf("host-meta.json: %d %q", code, body)
	}

	// Bob on TCP.
	b := xmpptest.Dial(t, w.Addr, domain)
	b.Open()
	b.StartTLS(w.Roots)
	if cond := b.AuthSCRAM("SCRAM-SHA-256", "bob", bobPass, ""); cond != "" {
		t.Fatal(cond)
	}
	b.Bind("tcp")

	a, ws := w.wsClient(t, "alice", alicePass, "web")
	id := a.EnableSM(true).Attr("id")
	a.Send("<message xmlns='jabber:client' to='" + bob + "/tcp' type='chat' id='w1'><body>hello from the browser</body></message>")
	m := b.Expect("w1", func(e *xmlstream.Element) bool { return e.Attr("id") == "w1" })
	if m.Attr("from") != alice+"/web" {
		t.Fatalf("bob got %s", m)
	}
	b.Send("<message to='" + alice + "/web' type='chat' id='t1'><body>hello from tcp</body></message>")
	a.Expect("t1", func(e *xmlstream.Element) bool { return e.Attr("id") == "t1" })
	handled := a.Handled

	// The network goes: no <close/>, no close frame.
	ws.Conn.Close()
	b.Send("<message to='" + alice + "/web' type='chat' id='t2'><body>while you were away</body></message>")
	a2, _ := w.wsClient(t, "alice", alicePass, "")
	if r := a2.Resume(id, handled); r.Local != "resumed" {
		t.Fatalf("resume: %s", r)
	}
	a2.Expect("t2 after resumption", func(e *xmlstream.Element) bool { return e.Attr("id") == "t2" })

	// A frame larger than c2s.max_stanza_size (256 KiB).
	ws3, st, err := xmpptest.DialWebSocket(w.WSURL(), w.Roots, nil)
	if err != nil {
		t.Fatal(err)
	}
	c3 := xmpptest.NewWebSocketClient(t, ws3, st, domain)
	c3.Open()
	if err := ws3.WriteFrame(0x1, true, true, []byte("<message>"+strings.Repeat("x", 300<<10)+"</message>")); err != nil && !isReset(err) {
		t.Fatal(err)
	}
	if cond := c3.StreamError(); cond != "policy-violation" {
		t.Fatalf("oversized frame: stream error %q", cond)
	}

	// A page of an origin not in http.cors_origins.
	if _, _, err := xmpptest.DialWebSocket(w.WSURL(), w.Roots, http.Header{"Origin": {"https://evil.example"}}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("foreign origin: %v", err)
	}
	// And without the subprotocol.
	if _, _, err := xmpptest.DialWebSocket(w.WSURL(), w.Roots, http.Header{"Sec-WebSocket-Protocol": {"chat"}}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("no xmpp subprotocol: %v", err)
	}
	if !strings.Contains(w.Log(), `"user":"alice@localhost","remote":"127.0.0.1:`) {
		t.Fatalf("no login line with the client's address in the log")
	}
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe")
}

// TestHTTPListenerMounts: with http.upload and http.api, the one web
// listener serves the upload store (its URLs pointing there, upload.addr
// off) and the API (api.addr off), besides WebSocket.
func TestHTTPListenerMounts(t *testing.T) {
	requireTools(t, "slixmpp", "aiohttp")
	const token = "0123456789abcdef-admin"
	port := freePort(t)
	base := "https://localhost:" + strconv.Itoa(port)
	w := startWebServerOn(t, port, "AMBROSIA_HTTP_UPLOAD=true", "AMBROSIA_HTTP_API=true", "AMBROSIA_HTTP_PUBLIC_URL="+base,
		"AMBROSIA_UPLOAD_ADDR=", "AMBROSIA_API_ADDR=", "AMBROSIA_API_ADMIN_TOKEN="+token)
	addUser(t, w.Server, alice, alicePass)
	if code, body, _ := w.httpGet(t, "/api/v1/openapi.json", nil); code != 200 || !strings.Contains(body, "openapi") {
		t.Fatalf("openapi.json on the web listener: %d %.200s", code, body)
	}
	if code, body, _ := w.httpGet(t, "/api/v1/s2s", http.Header{"Authorization": {"Bearer " + token}}); code != 200 {
		t.Fatalf("admin call on the web listener: %d %.200s", code, body)
	}
	out := mustPython(t, "upload_file", append(w.clientArgs(false),
		"--jid", alice, "--password", alicePass, "--service", "upload."+domain, "--size", "20000", "--max", "104857600")...)
	if !strings.Contains(out, "fetched back 20000 identical bytes") || !strings.Contains(out, base+"/upload/") {
		t.Fatalf("upload through the web listener:\n%s", out)
	}
}

// TestSplitWebSocket: a gateway's web listener (plain, behind a proxy) is
// not ready until a session manager links, and a user the service sends
// elsewhere gets RFC 7395's see-other-uri in <close/>.
func TestSplitWebSocket(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	dir := t.TempDir()
	ambrosia(t, "pw\n", "user", "add", "alice@"+domain, "--data", dir, "--create")
	port := freePort(t)
	conf := filepath.Join(t.TempDir(), "gateway.toml")
	doc := fmt.Sprintf("[http]\naddr = '127.0.0.1:%d'\ntls = false\n", port)
	if err := os.WriteFile(conf, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, "gateway", "--config", conf)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitListening(t, "127.0.0.1:"+strconv.Itoa(port), g.done, "gateway http", func() string { return "" })
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "services: no session manager linked") {
		t.Fatalf("readyz before the service: %d %q", code, body)
	}
	startSM(t, "service sm", dir, []*splitGateway{g}, "--see-other-host", "xmpp.other.example:5222")
	g.waitLog(t, `"msg":"bound"`, 1)
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Fatalf("readyz with the service: %d %q", code, body)
	}
	ws, _, err := xmpptest.DialWebSocket("ws://127.0.0.1:"+strconv.Itoa(port)+"/xmpp-websocket", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_, _ = ws.Write([]byte("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='" + domain + "' version='1.0'/>"))
	first := base64.StdEncoding.EncodeToString([]byte("n,,n=nobody,r=0123456789abcdef"))
	_, _ = ws.Write([]byte("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>" + first + "</auth>"))
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		op, p, err := ws.ReadFrame()
		if err != nil {
			t.Fatalf("no <close/> with see-other-uri: %v", err)
		}
		if op == 1 && strings.HasPrefix(string(p), "<close") {
			if want := "see-other-uri='ws://xmpp.other.example:" + strconv.Itoa(port) + "/xmpp-websocket'"; !strings.Contains(string(p), want) {
				t.Fatalf("got %s, want %s", p, want)
			}
			return
		}
	}
}
