package e2e

import "testing"

// TestInBandRegistration: an aioxmpp client creates its account in-band
// (slixmpp 1.8 cannot send before authentication), slixmpp logs in with it
// and changes the password; only the new password logs in afterwards.
func TestInBandRegistration(t *testing.T) {
	requireTools(t, "slixmpp", "aioxmpp")
	s := startServer(t, ServerOptions{ExtraArgs: []string{"--allow-registration"}})
	mustPython(t, "im_register", append(s.clientArgs(false),
		"--jid", "newcomer@localhost", "--password", "first-Secret", "--new-password", "second-Secret")...)
	mustPython(t, "login", loginArgs(s, false, "newcomer@localhost", "second-Secret", "SCRAM-SHA-256")...)
	if code, _ := runPython(t, "login", loginArgs(s, false, "newcomer@localhost", "first-Secret", "SCRAM-SHA-256")...); code == 0 {
		t.Fatal("the old password still works")
	}
}
