package e2e

import "testing"

// TestOfflineMessagesSurviveRestart: alice writes to bob while he is
// offline, the server restarts, and bob gets every message once, in order,
// with a delay stamp (XEP-0160, XEP-0203).
func TestOfflineMessagesSurviveRestart(t *testing.T) {
	s := startWithUsers(t)
	mustPython(t, "offline_send", append(s.clientArgs(false),
		"--jid", alice, "--password", alicePass, "--to", bob, "--body", "while you were away", "--count", "3")...)
	s.Stop(t)
	s2 := startServer(t, ServerOptions{DataDir: s.DataDir})
	mustPython(t, "offline_receive", append(s2.clientArgs(false),
		"--jid", bob, "--password", bobPass, "--body", "while you were away", "--count", "3", "--expect-from", alice)...)
	// Delivered means gone: a second login gets nothing stored.
	mustPython(t, "offline_receive", append(s2.clientArgs(false),
		"--jid", bob, "--password", bobPass, "--body", "while you were away", "--count", "0", "--expect-from", alice)...)
}
