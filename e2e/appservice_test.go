package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tokens of the application service tests: the admin's, and the
// directory's (examples/appservice) both ways.
const (
	apiAdminToken     = "admin-Token-0123456789"
	dirToken          = "directory-Token-0123456789"
	dirServerToken    = "directory-Server-Token-0123456789"
	directoryStatus   = "Directory: ask me 'who is bob?'"
	directoryBobLine  = "bob is Bob Okafor, site reliability engineer, office 1.03 (dir-bob@localhost)."
	directoryCarol    = `{"op":"lookup","found":true,"name":"Carol Nguyen","title":"chief financial officer","office":"3.01","jid":"dir-carol@localhost"}`
	directoryForbid   = "lottery"
	directoryResource = "directory"
)

// apiClient calls the HTTP API of a test server.
type apiClient struct {
	t    testing.TB
	base string // http://host:port/api/v1
	http *http.Client
}

// call makes one call with the Authorization header auth ("" for none)
// and body (nil for none, a string as it is, anything else as JSON), and
// returns the status and the body of the answer.
func (a apiClient) call(auth, method, path string, body any) (int, string) {
	a.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, a.base+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return resp.StatusCode, string(b)
}

// must makes a call with token and fails the test unless it answers want;
// it returns the answer's body.
func (a apiClient) must(token, method, path string, body any, want int) string {
	a.t.Helper()
	status, b := a.call("Bearer "+token, method, path, body)
	if status != want {
		a.t.Fatalf("%s %s: %d %s, want %d", method, path, status, b, want)
	}
	return b
}

// apiServer is a server whose HTTP API listens on apiAddr.
type apiServer struct {
	*Server
	apiAddr string
	conf    string // the configuration file, for a restart
	api     apiClient
}

// startAPIServer starts a server with the configuration conf, whose [api]
// listens on apiAddr, on dataDir ("" for a fresh one), and waits for the
// API to listen too.
func startAPIServer(t *testing.T, apiAddr, conf, dataDir string) *apiServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ambrosia.toml")
	writeFile(t, path, conf)
	return restartAPIServer(t, &apiServer{apiAddr: apiAddr, conf: path}, dataDir)
}

// restartAPIServer starts a server with the configuration of as on
// dataDir.
func restartAPIServer(t *testing.T, as *apiServer, dataDir string) *apiServer {
	t.Helper()
	s := startServer(t, ServerOptions{DataDir: dataDir, ExtraArgs: []string{"--config", as.conf}})
	waitListening(t, as.apiAddr, s.done, "the HTTP API", s.Log)
	return &apiServer{Server: s, apiAddr: as.apiAddr, conf: as.conf,
		api: apiClient{t: t, base: "http://" + as.apiAddr + "/api/v1", http: &http.Client{Timeout: 30 * time.Second}}}
}

// directoryConf is the configuration of a server with the HTTP API on
// apiAddr and the example directory service listening on dirPort; extra
// goes into its [[appservice]] section.
func directoryConf(apiAddr string, dirPort int, extra string) string {
	return fmt.Sprintf(`[api]
addr = %q
admin_token = %q

[[appservice]]
name = %q
url = "http://127.0.0.1:%d"
token = %q
server_token = %q
users = ['^dir-[a-z]+@localhost$']
%s

[[appservice.hook]]
event = "message"
timeout = "5s"
on_timeout = "allow"
`, apiAddr, apiAdminToken, directoryResource, dirPort, dirToken, dirServerToken, extra)
}

// directory is a run of examples/appservice/directory.py.
type directory struct {
	*daemon
	cmd *exec.Cmd
}

// startDirectory runs the example directory service against s, listening
// on port and journaling to state, and waits until it is READY (its
// users are available).
func startDirectory(t *testing.T, name string, s *apiServer, port int, state string, extra ...string) *directory {
	t.Helper()
	args := append([]string{"-B", filepath.Join(moduleRoot, "examples", "appservice", "directory.py"),
		"--api", "http://" + s.apiAddr, "--listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		"--token", dirToken, "--server-token", dirServerToken, "--domain", domain,
		"--forbidden", directoryForbid, "--state", state}, extra...)
	cmd := exec.Command(python, args...)
	d := &directory{daemon: runDaemon(t, name, cmd, 5*time.Second, "", nil), cmd: cmd}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(d.out.String(), "READY\n") {
		select {
		case <-d.done:
			t.Fatalf("%s exited before it was ready:\n%s", name, d.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 30 s:\n%s", name, d.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return d
}

// journalEvent is what the directory's journal keeps of an event.
type journalEvent struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	User      string `json:"user"`
	From      string `json:"from"`
	MessageID string `json:"message_id"`
	Note      string `json:"note"`
}

// readJournal returns the transactions the directory's journal records,
// complete lines only (a killed service may have left half of one).
func readJournal(t *testing.T, path string) []struct {
	Txn    string         `json:"txn"`
	Events []journalEvent `json:"events"`
} {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var out []struct {
		Txn    string         `json:"txn"`
		Events []journalEvent `json:"events"`
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var rec struct {
			Txn    string         `json:"txn"`
			Events []journalEvent `json:"events"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("journal line %q: %v", sc.Text(), err)
		}
		out = append(out, rec)
	}
	return out
}

// TestAppServicePython runs the example directory service
// (examples/appservice/directory.py, standard library only) against the
// built server: a slixmpp user adds dir-alice to the roster (the service
// approves and subscribes back; her presence carries the service's
// status), asks her in text and in XEP-0335 JSON, has the service make her
// away and back, has a message refused by the service's message hook
// (policy-violation and the service's text), and receives as a roster push
// an item the service sets in the user's roster through the API (the
// service watches the user). Then the example JSON client
// (json_client.py) asks dir-alice about carol.
func TestAppServicePython(t *testing.T) {
	requireTools(t, "slixmpp")
	apiAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	dirPort := freePort(t)
	s := startAPIServer(t, apiAddr, directoryConf(apiAddr, dirPort, `watch = ['^alice@localhost$']`), "")
	s.api.must(apiAdminToken, "POST", "/users", map[string]string{"jid": alice, "password": alicePass}, http.StatusNoContent)
	state := filepath.Join(t.TempDir(), "directory.journal")
	startDirectory(t, "directory", s, dirPort, state)

	c := startPython(t, "appservice_client", append(s.clientArgs(false), "--timeout", "75",
		"--jid", alice, "--password", alicePass, "--contact", "dir-alice@"+domain,
		"--status", directoryStatus, "--bob-line", directoryBobLine, "--carol-json", directoryCarol,
		"--forbidden", directoryForbid, "--pushed", "carol@"+domain)...)
	c.waitLine(t, "ROSTER-READY", 80*time.Second)
	// The service's token: it watches alice, so it may edit her roster.
	s.api.must(dirToken, "PUT", "/users/"+alice+"/roster/carol@"+domain,
		map[string]any{"name": "Carol", "groups": []string{"Colleagues"}, "subscription": "both"}, http.StatusNoContent)
	t.Logf("appservice_client.py:\n%s", c.wait(t))

	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-B", filepath.Join(moduleRoot, "examples", "appservice", "json_client.py"),
		"--jid", alice, "--password", alicePass, "--to", "dir-alice@"+domain, "--name", "carol",
		"--port", strconv.Itoa(s.Port), "--ca", s.CAFile).CombinedOutput()
	if err != nil {
		t.Fatalf("json_client.py: %v\n%s", err, out)
	}
	var got, want map[string]any
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("json_client.py printed no JSON: %v\n%s", err, out)
	}
	_ = json.Unmarshal([]byte(directoryCarol), &want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("json_client.py: %v, want %v", got, want)
	}
	t.Logf("json_client.py: %s", out)

	// The service refuses calls without the server's token.
	svc := apiClient{t: t, base: "http://127.0.0.1:" + strconv.Itoa(dirPort), http: s.api.http}
	for _, auth := range []string{"", "Bearer " + dirToken, "Bearer wrong-" + dirServerToken} {
		events := `{"events": [{"id": "forged", "type": "message", "user": "dir-bob@localhost", "from": "x@localhost", "message": {"body": "note forged"}}]}`
		if status, body := svc.call(auth, "PUT", "/transactions/forged-txn", events); status != http.StatusUnauthorized {
			t.Errorf("a transaction with Authorization %q: %d %s, want 401", auth, status, body)
		}
		if status, body := svc.call(auth, "POST", "/hooks/message", `{"event": {}}`); status != http.StatusUnauthorized {
			t.Errorf("a hook call with Authorization %q: %d %s, want 401", auth, status, body)
		}
	}

	// The service processed each transaction once.
	seen := map[string]bool{}
	for _, rec := range readJournal(t, state) {
		if seen[rec.Txn] {
			t.Errorf("transaction %s twice in the journal", rec.Txn)
		}
		seen[rec.Txn] = true
		for _, ev := range rec.Events {
			if rec.Txn == "forged-txn" || ev.ID == "forged" {
				t.Errorf("the service processed a transaction without the server's token: %+v", rec)
			}
		}
	}
	if len(seen) == 0 {
		t.Error("the journal records no transaction")
	}
}

// floodClient logs in as user (a bare JID) with a raw client that sends no presence
// (nothing comes to it but answers to what it sends to full JIDs).
func floodClient(t *testing.T, s *Server, user, password, resource string) *rawClient {
	t.Helper()
	c, err := dialRaw(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	local, _, _ := strings.Cut(user, "@")
	if _, err := c.login(s, local, password, resource); err != nil {
		t.Fatal(err)
	}
	return c
}

// sendNotes sends dir-bob the notes n-<from> … n-<to>, a ping after every
// 50; it returns once the server answered the last ping, i.e. handled
// every note.
func sendNotes(c *rawClient, from, to int) error {
	for i := from; i <= to; i++ {
		if err := c.send(fmt.Sprintf(`<message to='dir-bob@%s' type='chat' id='n-%04d'><body>note n-%04d</body></message>`, domain, i, i)); err != nil {
			return err
		}
		if i%50 == 0 || i == to {
			if err := c.send(fmt.Sprintf(`<iq type='get' id='ping-%d' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>`, i, domain)); err != nil {
				return err
			}
			if _, err := c.expect(regexp.MustCompile(fmt.Sprintf(`<iq[^>]*\bid=["']ping-%d["']`, i))); err != nil {
				return err
			}
		}
	}
	return nil
}

// notesIn returns the ids of the notes to dir-bob in the journal, as
// often as each was processed.
func notesIn(t *testing.T, state string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, rec := range readJournal(t, state) {
		for _, ev := range rec.Events {
			if ev.User == "dir-bob@"+domain && strings.HasPrefix(ev.MessageID, "n-") {
				got[ev.MessageID]++
			}
		}
	}
	return got
}

// waitNotes waits until the journal holds at least n notes.
func waitNotes(t *testing.T, state string, n int, d *directory) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for len(notesIn(t, state)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the journal holds %d notes after 90 s, want %d\n%s", len(notesIn(t, state)), n, d.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAppServiceKillExactlyOnce: a user sends dir-bob of the example
// directory 1,000 notes. The service's first run dies (on purpose, the
// test's --crash-after) right after journaling its third transaction,
// before answering: the server sends that transaction again, with the same
// id, to the second run, which acknowledges it without processing it. The
// second run is killed with SIGKILL part way; the last 500 notes are sent
// while it is dead, and the server is stopped with them waiting and
// started again on the same data directory; a third run, on the same
// journal, gets them. The server is then restarted under the third run,
// which makes its users available again, and a last note reaches it. Every
// note is processed exactly once: 1,001 in the journal, none twice, and
// the service counts 1,001 notes when asked.
func TestAppServiceKillExactlyOnce(t *testing.T) {
	requireTools(t, "slixmpp")
	apiAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	dirPort := freePort(t)
	dataDir := t.TempDir()
	s := startAPIServer(t, apiAddr, directoryConf(apiAddr, dirPort, `batch = 20
events = ["message"]`), dataDir)
	const flood, floodPass = "flood@" + domain, "flood-Secret-7"
	addUser(t, s.Server, flood, floodPass)
	state := filepath.Join(t.TempDir(), "directory.journal")

	first := startDirectory(t, "directory (first run)", s, dirPort, state, "--crash-after", "3")
	c := floodClient(t, s.Server, flood, floodPass, "flood")
	sent := make(chan error, 1)
	go func() { sent <- sendNotes(c, 1, 500) }()

	// The first run crashes after journaling a transaction it did not
	// answer.
	select {
	case <-first.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the first run did not crash:\n%s", first.logs())
	}
	m := regexp.MustCompile(`crashing after recording transaction (\S+)`).FindStringSubmatch(first.logs())
	if m == nil {
		t.Fatalf("the first run exited without crashing on purpose:\n%s", first.logs())
	}
	crashedTxn := m[1]
	second := startDirectory(t, "directory (second run)", s, dirPort, state)

	// The second run is killed part way.
	waitNotes(t, state, 250, second)
	if err := second.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-second.done
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if err := sendNotes(c, 501, 1000); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(second.logs(), "duplicate transaction "+crashedTxn+":") {
		t.Errorf("the second run did not see transaction %s again:\n%s", crashedTxn, second.logs())
	}
	// The notes sent since are all waiting in the server.
	processed := len(notesIn(t, state))
	t.Logf("%d notes processed when the second run was killed", processed)
	if processed > 500 {
		t.Fatalf("%d notes processed by a dead service", processed)
	}

	// The server stops with the rest waiting, and starts again.
	s.Stop(t)
	s = restartAPIServer(t, s, dataDir)
	third := startDirectory(t, "directory (third run)", s, dirPort, state, "--check-every", "0.5")
	waitNotes(t, state, 1000, third)
	checkNotes(t, state, 1000)

	// The server restarts under the running service, which makes its
	// users available again; a note sent meanwhile waits for dir-bob.
	s.Stop(t)
	s = restartAPIServer(t, s, dataDir)
	c = floodClient(t, s.Server, flood, floodPass, "again")
	if err := sendNotes(c, 1001, 1001); err != nil {
		t.Fatal(err)
	}
	waitNotes(t, state, 1001, third)
	checkNotes(t, state, 1001)
	if !strings.Contains(third.logs(), "dir-bob@"+domain+" was offline: available again") {
		t.Errorf("the service did not make dir-bob available again after the restart:\n%s", third.logs())
	}

	// The directory's own state agrees.
	if err := c.send(fmt.Sprintf(`<message to='dir-bob@%s' type='chat' id='q1'><body>notes</body></message>`, domain)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.expect(regexp.MustCompile(`1001 notes for bob, the last: n-1001`)); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*directory{second, third} {
		for _, l := range strings.Split(d.logs(), "\n") {
			if strings.Contains(l, "duplicate transaction") {
				t.Log(l)
			}
		}
	}
}

// checkNotes fails the test unless the journal holds the notes n-0001 …
// n-<n>, each once.
func checkNotes(t *testing.T, state string, n int) {
	t.Helper()
	got := notesIn(t, state)
	var twice, missing []string
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n-%04d", i)
		switch got[id] {
		case 0:
			missing = append(missing, id)
		case 1:
		default:
			twice = append(twice, id)
		}
	}
	if len(got) != n || len(twice) > 0 || len(missing) > 0 {
		t.Fatalf("%d notes in the journal, want %d; processed more than once: %v; missing: %v", len(got), n, twice, missing)
	}
}

// slowService is an application service that answers transactions only
// when released and hook calls never.
type slowService struct {
	*httptest.Server
	release chan struct{} // closed to answer the transactions
	started chan string   // the id of each transaction that came in
	mu      sync.Mutex
	events  []string // "type from" of the events of the transactions answered
	badAuth int
}

func startSlowService(t *testing.T) *slowService {
	t.Helper()
	sl := &slowService{release: make(chan struct{}), started: make(chan string, 100)}
	stop := make(chan struct{})
	sl.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+slowServerToken {
			sl.mu.Lock()
			sl.badAuth++
			sl.mu.Unlock()
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/transactions/"):
			sl.started <- strings.TrimPrefix(r.URL.Path, "/transactions/")
			select {
			case <-sl.release:
			case <-time.After(25 * time.Second): // within the server's 30 s
			case <-r.Context().Done():
				return
			case <-stop:
				return
			}
			var txn struct {
				Events []struct{ Type, From, Subscription string }
			}
			if err := json.NewDecoder(r.Body).Decode(&txn); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			sl.mu.Lock()
			for _, e := range txn.Events {
				sl.events = append(sl.events, e.Type+" "+e.Subscription+" "+e.From)
			}
			sl.mu.Unlock()
			w.WriteHeader(http.StatusOK)
		case strings.HasPrefix(r.URL.Path, "/hooks/"):
			select { // never answers
			case <-r.Context().Done():
			case <-stop:
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(func() {
		close(stop)
		sl.Close()
	})
	return sl
}

const (
	slowToken       = "slow-Token-0123456789"
	slowServerToken = "slow-Server-Token-0123456789"
)

// TestAppServiceBadInput calls the HTTP API as curl would, with what it
// must refuse: no token or a wrong one (401, nothing done), a service
// acting outside its namespace (403), malformed JSON (400 naming the
// field), a body over 1 MiB (413). A second service, a Go one that holds
// its transactions until the test releases them and never answers its
// message hook (timeout 300 ms, on_timeout deny), holds up nobody else:
// two ordinary users exchange messages while its transaction is stuck,
// and a message to its user gets the hook's timeout policy.
func TestAppServiceBadInput(t *testing.T) {
	requireTools(t)
	slow := startSlowService(t)
	apiAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	s := startAPIServer(t, apiAddr, fmt.Sprintf(`[api]
addr = %q
admin_token = %q

[[appservice]]
name = "slow"
url = %q
token = %q
server_token = %q
users = ['^slow-[a-z]+@localhost$']

[[appservice.hook]]
event = "message"
timeout = "300ms"
on_timeout = "deny"
`, apiAddr, apiAdminToken, slow.URL, slowToken, slowServerToken), "")
	api := s.api

	// 401: nothing is done.
	for _, auth := range []string{"", "Bearer", "Bearer wrong-Token-0123456789", "Basic " + slowToken, "Bearer " + slowServerToken} {
		status, body := api.call(auth, "POST", "/users", map[string]string{"jid": "slow-zed@" + domain})
		if status != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
			t.Errorf("Authorization %q: %d %s, want 401 with an error", auth, status, body)
		}
	}
	if users := api.must(apiAdminToken, "GET", "/users?domain="+domain, nil, http.StatusOK); strings.Contains(users, "slow-zed") {
		t.Errorf("a call refused with 401 created the account: %s", users)
	}

	api.must(apiAdminToken, "POST", "/users", map[string]string{"jid": alice, "password": alicePass}, http.StatusNoContent)
	api.must(apiAdminToken, "POST", "/users", map[string]string{"jid": bob, "password": bobPass}, http.StatusNoContent)

	// 403: outside the service's namespace.
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/send", map[string]string{"from": alice, "to": bob, "body": "not from me"}},
		{"POST", "/send", map[string]string{"from": domain, "to": bob, "body": "from the domain"}},
		{"POST", "/users", map[string]string{"jid": "zed@" + domain}},
		{"DELETE", "/users/" + bob, nil},
		{"PUT", "/users/" + alice + "/presence", map[string]any{"available": true}},
		{"GET", "/users/" + alice + "/roster", nil},
		{"GET", "/users?domain=" + domain, nil},
		{"GET", "/sessions", nil},
		{"DELETE", "/sessions/" + alice + "/phone", nil},
		{"POST", "/rooms", map[string]string{"jid": "lobby@conference." + domain, "owner": alice}},
		{"GET", "/components", nil},
	} {
		status, body := api.call("Bearer "+slowToken, c.method, c.path, c.body)
		if status != http.StatusForbidden {
			t.Errorf("%s %s as the slow service: %d %s, want 403", c.method, c.path, status, body)
		}
	}
	if users := api.must(apiAdminToken, "GET", "/users?domain="+domain, nil, http.StatusOK); strings.Contains(users, "zed@") {
		t.Errorf("a call refused with 403 created the account: %s", users)
	}

	// 400, the message beginning with the field.
	for _, c := range []struct {
		method, path string
		body         string
		field        string
	}{
		{"POST", "/users", `{"jid": "slow-amy@localhost", `, "body: "},
		{"POST", "/users", `{"jid": 5}`, "jid: "},
		{"POST", "/users", `{"jdi": "slow-amy@localhost"}`, "jdi: unknown field"},
		{"POST", "/users", `{"jid": "slow-amy@localhost"} {}`, "body: "},
		{"POST", "/users", `{"jid": "slow-amy"}`, "jid: "},
		{"PUT", "/users/slow-amy@localhost/presence", `{}`, "available: required"},
		{"PUT", "/users/slow-amy@localhost/presence", `{"available": true, "show": "busy"}`, `show: "busy" is not one of`},
		{"PUT", "/users/slow-amy@localhost/presence", `{"available": "yes"}`, "available: "},
		{"POST", "/send", `{"from": "slow-amy@localhost", "to": "alice@localhost"}`, "body: required"},
		{"POST", "/send", `{"from": "slow-amy@localhost", "stanza": "<message><body>unclosed</message>"}`, "stanza: "},
		{"POST", "/send", `{"from": "slow-amy@localhost", "to": "alice@localhost", "type": "urgent", "body": "x"}`, "type: "},
		{"PUT", "/users/slow-amy@localhost/roster/alice@localhost", `{"subscription": "maybe"}`, "subscription: "},
	} {
		status, body := api.call("Bearer "+slowToken, c.method, c.path, c.body)
		var e struct{ Error string }
		_ = json.Unmarshal([]byte(body), &e)
		if status != http.StatusBadRequest || !strings.HasPrefix(e.Error, c.field) {
			t.Errorf("%s %s %s: %d %s, want 400 with an error beginning %q", c.method, c.path, c.body, status, body, c.field)
		}
	}
	// 413 for a body over 1 MiB.
	big := fmt.Sprintf(`{"from": "slow-amy@localhost", "to": "alice@localhost", "body": %q}`, strings.Repeat("x", 2<<20))
	if status, body := api.call("Bearer "+slowToken, "POST", "/send", big); status != http.StatusRequestEntityTooLarge {
		t.Errorf("a 2 MiB body: %d %s, want 413", status, body)
	}
	if users := api.must(apiAdminToken, "GET", "/users?domain="+domain, nil, http.StatusOK); strings.Contains(users, "slow-amy") {
		t.Errorf("a refused call created the account: %s", users)
	}

	// The slow service's user, available.
	const sam = "slow-sam@" + domain
	api.must(slowToken, "POST", "/users", map[string]string{"jid": sam}, http.StatusNoContent)
	api.must(slowToken, "PUT", "/users/"+sam+"/presence", map[string]any{"available": true, "status": "slow"}, http.StatusNoContent)

	ca := floodClient(t, s.Server, alice, alicePass, "desk")
	cb := floodClient(t, s.Server, bob, bobPass, "desk")
	// A subscription request is an event: its transaction gets stuck.
	if err := ca.send(fmt.Sprintf(`<presence type='subscribe' to='%s'/>`, sam)); err != nil {
		t.Fatal(err)
	}
	var txn string
	select {
	case txn = <-slow.started:
	case <-time.After(rawTimeout):
		t.Fatal("no transaction reached the slow service")
	}
	t.Logf("transaction %s held by the slow service", txn)

	exchange := func(round int) {
		t.Helper()
		for i, p := range [][2]*rawClient{{ca, cb}, {cb, ca}} {
			to := bob
			if i == 1 {
				to = alice
			}
			id := fmt.Sprintf("r%d-%d", round, i)
			if err := p[0].send(fmt.Sprintf(`<message to='%s/desk' type='chat' id='%s'><body>hello %s</body></message>`, to, id, id)); err != nil {
				t.Fatal(err)
			}
			if _, err := p[1].expect(regexp.MustCompile(`<message[^>]*\bid=["']` + id + `["'][^>]*>.*?hello ` + id)); err != nil {
				t.Fatalf("while the slow service is stuck: %v", err)
			}
		}
	}
	exchange(1)
	// A message to the slow service's user: its hook never answers, and
	// on_timeout is deny.
	if err := ca.send(fmt.Sprintf(`<message to='%s' type='chat' id='to-sam'><body>are you there?</body></message>`, sam)); err != nil {
		t.Fatal(err)
	}
	e, err := ca.expect(regexp.MustCompile(`(?s)<message[^>]*\bid=["']to-sam["'][^>]*>.*?</message>`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e, `type="error"`) && !strings.Contains(e, `type='error'`) || !strings.Contains(e, "<service-unavailable") || !strings.Contains(e, "could not be checked") {
		t.Errorf("message to %s: %s, want an error service-unavailable saying it could not be checked", sam, e)
	}
	exchange(2)
	select {
	case more := <-slow.started:
		t.Errorf("transaction %s sent while %s was not answered", more, txn)
	default:
	}

	// Released, the service gets the subscription request.
	close(slow.release)
	deadline := time.Now().Add(rawTimeout)
	for {
		slow.mu.Lock()
		evs := slices.Clone(slow.events)
		bad := slow.badAuth
		slow.mu.Unlock()
		if bad > 0 {
			t.Errorf("%d calls to the slow service without its server token", bad)
		}
		if slices.ContainsFunc(evs, func(e string) bool { return strings.HasPrefix(e, "subscription subscribe "+alice) }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slow service did not get the subscription request; events: %q", evs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAdminAPI goes through the admin API: accounts created, listed and
// deleted (the deleted user's session ends), a session listed and ended
// (its client sees the stream end, with the reason given), a session the
// API opened by setting a user's presence, read and ended, a room created
// and listed, the
// external components and server-to-server streams listed (none), and the
// OpenAPI document, which needs no token.
func TestAdminAPI(t *testing.T) {
	requireTools(t)
	apiAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	s := startAPIServer(t, apiAddr, fmt.Sprintf("[api]\naddr = %q\nadmin_token = %q\n", apiAddr, apiAdminToken), "")
	api := s.api

	if status, body := api.call("", "GET", "/openapi.json", nil); status != http.StatusOK || !strings.Contains(body, `"openapi"`) {
		t.Errorf("GET /openapi.json: %d %.200s", status, body)
	}

	const erin, erinPass = "erin@" + domain, "erin-Secret-5"
	api.must(apiAdminToken, "POST", "/users", map[string]string{"jid": erin, "password": erinPass}, http.StatusNoContent)
	api.must(apiAdminToken, "POST", "/users", map[string]string{"jid": erin, "password": erinPass}, http.StatusConflict)
	api.must(apiAdminToken, "POST", "/users", map[string]string{"jid": bob, "password": bobPass}, http.StatusNoContent)
	var users struct{ Users []string }
	decode(t, api.must(apiAdminToken, "GET", "/users?domain="+domain, nil, http.StatusOK), &users)
	if !slices.Contains(users.Users, erin) || !slices.Contains(users.Users, bob) {
		t.Errorf("users: %v, want %s and %s", users.Users, erin, bob)
	}

	// A session, listed and ended.
	laptop := floodClient(t, s.Server, erin, erinPass, "laptop")
	var sessions struct {
		Sessions []struct{ JID, Kind, Address string }
	}
	decode(t, api.must(apiAdminToken, "GET", "/sessions", nil, http.StatusOK), &sessions)
	if len(sessions.Sessions) != 1 || sessions.Sessions[0].JID != erin+"/laptop" || sessions.Sessions[0].Kind != "c2s" || sessions.Sessions[0].Address == "" {
		t.Errorf("sessions: %+v, want erin's laptop, c2s, with its address", sessions.Sessions)
	}
	api.must(apiAdminToken, "DELETE", "/sessions/"+erin+"/laptop?reason=Maintenance%20at%20noon", nil, http.StatusNoContent)
	e, err := laptop.expect(regexp.MustCompile(`(?s)<(?:stream:)?error[\s>].*?</(?:stream:)?error>`))
	if err != nil {
		t.Fatalf("the ended session's client: %v", err)
	}
	if !streamError("policy-violation").MatchString(e) || !strings.Contains(e, ">Maintenance at noon</text>") {
		t.Errorf("stream error %s, want policy-violation with the reason as its text", e)
	}
	if err := laptop.expectClosed(); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, func() error {
		decode(t, api.must(apiAdminToken, "GET", "/sessions?user="+erin, nil, http.StatusOK), &sessions)
		if len(sessions.Sessions) != 0 {
			return fmt.Errorf("sessions of erin after the end: %+v", sessions.Sessions)
		}
		return nil
	})
	api.must(apiAdminToken, "DELETE", "/sessions/"+erin+"/laptop", nil, http.StatusNotFound)

	// A session the API opens (the admin's are named api), ended.
	api.must(apiAdminToken, "PUT", "/users/"+bob+"/presence", map[string]any{"available": true, "show": "dnd", "status": "via the API"}, http.StatusNoContent)
	var presence struct {
		Presence []struct{ Resource, Show, Status string }
	}
	decode(t, api.must(apiAdminToken, "GET", "/users/"+bob+"/presence", nil, http.StatusOK), &presence)
	if len(presence.Presence) != 1 || presence.Presence[0].Resource != "api" || presence.Presence[0].Show != "dnd" || presence.Presence[0].Status != "via the API" {
		t.Errorf("bob's presence: %+v", presence.Presence)
	}
	decode(t, api.must(apiAdminToken, "GET", "/sessions?user="+bob, nil, http.StatusOK), &sessions)
	if len(sessions.Sessions) != 1 || sessions.Sessions[0].JID != bob+"/api" || sessions.Sessions[0].Kind != "appservice" {
		t.Errorf("bob's sessions: %+v", sessions.Sessions)
	}
	api.must(apiAdminToken, "DELETE", "/sessions/"+bob+"/api", nil, http.StatusNoContent)
	checkFor(t, 10*time.Second, func() error {
		decode(t, api.must(apiAdminToken, "GET", "/sessions?user="+bob, nil, http.StatusOK), &sessions)
		if len(sessions.Sessions) != 0 {
			return fmt.Errorf("sessions of bob after the end: %+v", sessions.Sessions)
		}
		return nil
	})

	// A room.
	const lobby = "lobby@conference." + domain
	api.must(apiAdminToken, "POST", "/rooms", map[string]any{"jid": lobby, "owner": erin,
		"config": map[string][]string{"muc#roomconfig_roomname": {"Lobby"}}}, http.StatusNoContent)
	api.must(apiAdminToken, "POST", "/rooms", map[string]any{"jid": lobby, "owner": erin}, http.StatusConflict)
	var rooms struct {
		Rooms []struct {
			JID, Name string
			Occupants int
		}
	}
	decode(t, api.must(apiAdminToken, "GET", "/rooms?service=conference."+domain, nil, http.StatusOK), &rooms)
	if len(rooms.Rooms) != 1 || rooms.Rooms[0].JID != lobby || rooms.Rooms[0].Name != "Lobby" {
		t.Errorf("rooms: %+v, want the lobby named Lobby", rooms.Rooms)
	}

	// Components and federation: none here.
	if got := strings.TrimSpace(api.must(apiAdminToken, "GET", "/components", nil, http.StatusOK)); got != `{"components":[]}` {
		t.Errorf("components: %s", got)
	}
	if got := strings.TrimSpace(api.must(apiAdminToken, "GET", "/s2s", nil, http.StatusOK)); got != `{"s2s":[]}` {
		t.Errorf("s2s: %s", got)
	}

	// A new password: the old one is refused at once, though the server
	// keeps the credentials of the logins just made.
	for _, pw := range []struct{ set, old string }{{"erin-Secret-6", erinPass}, {erinPass, "erin-Secret-6"}} {
		api.must(apiAdminToken, "PUT", "/users/"+erin+"/password", map[string]any{"password": pw.set}, http.StatusNoContent)
		for _, try := range []struct {
			password string
			ok       bool
		}{{pw.old, false}, {pw.set, true}} {
			c, res, err := dialTLSAuth(s.Server, "erin", try.password)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			if strings.HasPrefix(res, "<success") != try.ok {
				t.Errorf("login with %q after the password became %q: %s", try.password, pw.set, res)
			}
		}
	}

	// Deleting an account ends its sessions and its logins.
	phone := floodClient(t, s.Server, erin, erinPass, "phone")
	api.must(apiAdminToken, "DELETE", "/users/"+erin, nil, http.StatusNoContent)
	if err := phone.expectClosed(); err != nil {
		t.Fatalf("the deleted user's session: %v", err)
	}
	decode(t, api.must(apiAdminToken, "GET", "/users?domain="+domain, nil, http.StatusOK), &users)
	if slices.Contains(users.Users, erin) || !slices.Contains(users.Users, bob) {
		t.Errorf("users after deleting erin: %v", users.Users)
	}
	c, res, err := dialTLSAuth(s.Server, "erin", erinPass)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !strings.HasPrefix(res, "<failure") {
		t.Errorf("the deleted user logged in: %s", res)
	}
	api.must(apiAdminToken, "DELETE", "/users/"+erin, nil, http.StatusNotFound)
}

// decode unmarshals an answer of the API.
func decode(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
}

// checkFor polls f until it returns nil, failing the test with its last
// error after d.
func checkFor(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
