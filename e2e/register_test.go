package e2e

import (
	"strings"
	"testing"
)

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

// TestInvitation: with open registration off (the default), the operator
// runs `ambrosia invite --contact alice@localhost` against the running
// server's data directory; an aioxmpp client registers with the token of
// the printed URI (XEP-0445 <preauth/>), and slixmpp sees invitee and
// inviter subscribed both ways (XEP-0379). The used token, and one that
// was never issued, are refused.
func TestInvitation(t *testing.T) {
	requireTools(t, "slixmpp", "aioxmpp")
	s := startServer(t, ServerOptions{})
	addUser(t, s, "alice@localhost", "alice-Secret")
	out := ambrosia(t, "", "invite", "--contact", "alice@localhost", "--expires", "1h", "--data", s.DataDir)
	uri, _, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(uri, "xmpp:alice@localhost?roster;preauth=") || !strings.HasSuffix(uri, ";ibr=y") {
		t.Fatalf("ambrosia invite printed %q", out)
	}
	mustPython(t, "im_invite", append(s.clientArgs(false), "--uri", uri,
		"--jid", "juliet@localhost", "--password", "juliet-Secret",
		"--inviter", "alice@localhost", "--inviter-password", "alice-Secret")...)
	mustPython(t, "im_invite", append(s.clientArgs(false), "--uri", uri,
		"--jid", "mallory@localhost", "--password", "mallory-Secret", "--expect-refused")...)
	mustPython(t, "im_invite", append(s.clientArgs(false), "--uri", "xmpp:localhost?register;preauth=made-up",
		"--jid", "mallory@localhost", "--password", "mallory-Secret", "--expect-refused")...)
	if code, _ := runPython(t, "login", loginArgs(s, false, "mallory@localhost", "mallory-Secret", "SCRAM-SHA-256")...); code == 0 {
		t.Fatal("an account was made with a used invitation")
	}
}

// TestInvitationCommand: with [invites] users = true, alice (slixmpp)
// finds the server's ad-hoc command urn:xmpp:invite#invite (XEP-0401),
// runs it and gets a contact invitation, with which aioxmpp registers.
func TestInvitationCommand(t *testing.T) {
	requireTools(t, "slixmpp", "aioxmpp")
	s := startServer(t, ServerOptions{Env: []string{"AMBROSIA_INVITES_USERS=true"}})
	addUser(t, s, "alice@localhost", "alice-Secret")
	mustPython(t, "im_invite", append(s.clientArgs(false), "--from-command",
		"--jid", "romeo@localhost", "--password", "romeo-Secret",
		"--inviter", "alice@localhost", "--inviter-password", "alice-Secret")...)
}
