package e2e

import "testing"

// TestStreamManagementResume: a slixmpp client with XEP-0198 loses its TCP
// connection, resumes its session on a new one and gets the messages sent
// meanwhile, each once and in order, under the same full JID.
func TestStreamManagementResume(t *testing.T) {
	s := startWithUsers(t)
	mustPython(t, "sm_resume", append(s.clientArgs(false),
		"--jid", alice, "--password", alicePass, "--to", bob, "--to-password", bobPass)...)
}
