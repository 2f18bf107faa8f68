package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// streamError matches a stream error with the given condition, whatever
// prefix the server picks for the streams namespace.
func streamError(condition string) *regexp.Regexp {
	return regexp.MustCompile(`(?s)<(?:stream:)?error[\s>].*?<` + regexp.QuoteMeta(condition) + `[\s/>]`)
}

// expectStreamError opens a stream, sends input and expects the given
// stream error followed by the server closing the connection. These run
// before STARTTLS because the parser already guards the plaintext stream.
func expectStreamError(t *testing.T, s *Server, input, condition string) {
	t.Helper()
	c, err := dialRaw(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.openStream(); err != nil {
		t.Fatal(err)
	}
	// Write concurrently: the server may stop reading (and answer) before a
	// large input is fully sent, and a blocked write must not hide that.
	go func() { _ = c.send(input) }()
	if _, err := c.expect(streamError(condition)); err != nil {
		t.Fatalf("want <%s/> stream error: %v", condition, err)
	}
	if err := c.expectClosed(); err != nil {
		t.Fatalf("after <%s/>: %v", condition, err)
	}
}

func TestBadInputNotWellFormed(t *testing.T) {
	requireTools(t)
	s := startServer(t, ServerOptions{})
	for name, input := range map[string]string{
		"mismatched-end-tag": `<message to='bob@localhost'><body>hi</mesage>`,
		"bad-attribute":      `<message to=bob@localhost><body>hi</body></message>`,
		"unclosed-angle":     `<message <body/></message>`,
		"invalid-char":       "<message><body>\x01</body></message>",
	} {
		t.Run(name, func(t *testing.T) { expectStreamError(t, s, input, "not-well-formed") })
	}
}

func TestBadInputRestrictedXML(t *testing.T) {
	requireTools(t)
	s := startServer(t, ServerOptions{})
	// RFC 6120 §11.1: no DTDs, comments, processing instructions or entity
	// references beyond the five predefined ones. Entity expansion is how
	// "billion laughs" attacks get in.
	for name, input := range map[string]string{
		"doctype":                `<!DOCTYPE lol [<!ENTITY lol "lol">]><message><body>&lol;</body></message>`,
		"entity-reference":       `<message to='bob@localhost'><body>&xxe;</body></message>`,
		"comment":                `<message to='bob@localhost'><!-- hidden --><body>hi</body></message>`,
		"processing-instruction": `<?evil data?><message to='bob@localhost'><body>hi</body></message>`,
	} {
		t.Run(name, func(t *testing.T) { expectStreamError(t, s, input, "restricted-xml") })
	}
}

func TestBadInputOversizedStanza(t *testing.T) {
	requireTools(t)
	s := startServer(t, ServerOptions{})
	big := fmt.Sprintf(`<message to='bob@localhost'><body>%s</body></message>`, strings.Repeat("a", 300*1024))
	expectStreamError(t, s, big, "policy-violation")
}

func TestBadInputDisconnectMidStanza(t *testing.T) {
	s := startWithUsers(t)

	c, err := dialRaw(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.openStream(); err != nil {
		t.Fatal(err)
	}
	if err := c.send(`<message to='bob@localhost'><body>half a sta`); err != nil {
		t.Fatal(err)
	}
	c.Close()

	// The same after authentication, where a session is bound and must be
	// torn down cleanly.
	c, err = dialRaw(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.login(s, "alice", alicePass, "raw"); err != nil {
		t.Fatal(err)
	}
	if err := c.send(`<presence/><message to='bob@localhost' type='chat'><body>half a sta`); err != nil {
		t.Fatal(err)
	}
	c.Close()

	mustPython(t, "login", loginArgs(s, false, bob, bobPass, "SCRAM-SHA-256")...)
	mustPython(t, "message", messageArgs(s, "after-drop-1", "still serving", "")...)
}

func TestBadInputParallelWrongPasswords(t *testing.T) {
	s := startWithUsers(t)
	const n = 100
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, res, err := dialTLSAuth(s, "alice", fmt.Sprintf("wrong-%d", i))
			if err != nil {
				errs <- fmt.Errorf("attempt %d: %w", i, err)
				return
			}
			defer c.Close()
			if !reNotAuth.MatchString(res) {
				errs <- fmt.Errorf("attempt %d: want <failure><not-authorized/>, got %s", i, res)
			}
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		failed++
		if failed <= 10 {
			t.Error(err)
		}
	}
	if failed > 10 {
		t.Errorf("... %d of %d attempts failed in all", failed, n)
	}

	c, res, err := dialTLSAuth(s, "alice", alicePass)
	if err != nil {
		t.Fatalf("correct password after the wrong ones: %v", err)
	}
	c.Close()
	if !strings.HasPrefix(res, "<success") {
		t.Fatalf("correct password after the wrong ones: got %s", res)
	}
	mustPython(t, "login", loginArgs(s, false, alice, alicePass, "SCRAM-SHA-1")...)
}

func TestBadInputSpoofedFrom(t *testing.T) {
	s := startWithUsers(t)
	// message.py checks that bob sees alice's real full JID, not carol.
	mustPython(t, "message", messageArgs(s, "spoof-1", "who am I", "carol@localhost/x")...)
}
