package e2e

import (
	"strings"
	"testing"
)

// TestArchiveSurvivesRestart: alice sends bob 120 messages while he is
// offline, the server restarts, and both page through their archives
// (XEP-0313 with RSM, 50 at a time, both directions) and find exactly the
// 120 messages, in order.
func TestArchiveSurvivesRestart(t *testing.T) {
	s := startWithUsers(t)
	const count = "120"
	mustPython(t, "offline_send", append(s.clientArgs(false),
		"--jid", alice, "--password", alicePass, "--to", bob, "--body", "archived", "--count", count)...)
	s.Stop(t)
	s2 := startServer(t, ServerOptions{DataDir: s.DataDir})
	for _, who := range []struct{ jid, pass, with string }{{alice, alicePass, bob}, {bob, bobPass, alice}} {
		out := mustPython(t, "mam_query", append(s2.clientArgs(false),
			"--jid", who.jid, "--password", who.pass, "--body", "archived", "--count", count, "--with-jid", who.with)...)
		if !strings.Contains(out, "forward: 120 messages in 3 pages") || !strings.Contains(out, "backward: 120 messages in 3 pages") {
			t.Fatalf("%s: %s", who.jid, out)
		}
	}
}
