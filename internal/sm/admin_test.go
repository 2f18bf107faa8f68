package sm

import (
	"sync"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
)

// closingSession records the condition it was closed with.
type closingSession struct {
	fakeSession
	cmu    sync.Mutex
	closed string
}

func (c *closingSession) Close(condition string) {
	c.cmu.Lock()
	c.closed = condition
	c.cmu.Unlock()
}

func (c *closingSession) condition() string {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	return c.closed
}

// TestEndSessions: every session of the user ends with the condition, and
// nobody else's.
func TestEndSessions(t *testing.T) {
	e := newPEPEnv(t)
	var ss []*closingSession
	for _, full := range []string{"alice@localhost/phone", "alice@localhost/laptop", "bob@localhost/desk"} {
		s := &closingSession{fakeSession: fakeSession{jid: jid.MustParse(full)}}
		if err := e.m.Bind(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	if n := e.m.EndSessions(jid.MustParse("alice@localhost"), "not-authorized", ""); n != 2 {
		t.Fatalf("ended %d sessions, want 2", n)
	}
	if ss[0].condition() != "not-authorized" || ss[1].condition() != "not-authorized" || ss[2].condition() != "" {
		t.Fatalf("conditions %q %q %q", ss[0].condition(), ss[1].condition(), ss[2].condition())
	}
	if n := e.m.EndSessions(jid.MustParse("carol@localhost"), "reset", ""); n != 0 {
		t.Fatalf("ended %d sessions of a user without any", n)
	}
}
