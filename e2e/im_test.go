package e2e

import "testing"

// The instant-messaging tests drive several slixmpp sessions from one script
// each (testdata/im_*.py), so that the order of what each session sees can
// be checked without coordinating processes.

const (
	imCarol     = "carol@localhost"
	imDave      = "dave@localhost"
	imCarolPass = "carol-Secret-3"
	imDavePass  = "dave-Secret-4"
)

// imScriptTimeout is the deadline each im_*.py keeps for its whole run,
// within the harness's scriptTimeout.
const imScriptTimeout = "75"

// startIM starts a server with alice, bob, carol and dave registered and
// returns the arguments that hand a script the connection and the accounts.
func startIM(t *testing.T) (*Server, []string) {
	t.Helper()
	s := startWithUsers(t)
	addUser(t, s, imCarol, imCarolPass)
	addUser(t, s, imDave, imDavePass)
	args := append(s.clientArgs(false), "--timeout", imScriptTimeout, "--mech", "SCRAM-SHA-256",
		"--user", alice, alicePass,
		"--user", bob, bobPass,
		"--user", imCarol, imCarolPass,
		"--user", imDave, imDavePass)
	return s, args
}

// TestIMSubscriptionFlow: alice and bob subscribe to each other (RFC 6121
// §3), with every roster push checked on both sides, then see each other's
// presence come and go; a request to a user who is offline waits for them.
func TestIMSubscriptionFlow(t *testing.T) {
	_, args := startIM(t)
	mustPython(t, "im_subscribe", args...)
}

// TestIMCarbons: alice's second resource gets a received carbon of what
// bob sends her first and a sent carbon of what the first sends bob
// (XEP-0280); a carbon bob forges is refused and never reaches alice.
func TestIMCarbons(t *testing.T) {
	_, args := startIM(t)
	mustPython(t, "im_carbons", args...)
}

// TestIMBlocking: alice blocks bob (XEP-0191); his messages bounce, hers to
// him are refused, her blocklist names him, and unblocking restores both
// directions.
func TestIMBlocking(t *testing.T) {
	_, args := startIM(t)
	mustPython(t, "im_blocking", args...)
}

// TestIMPrivateAndVCard: bookmarks in private XML storage (XEP-0049) survive
// a new login and stay alice's, bob reads the vCard alice set (XEP-0054),
// and the server answers an entity time request (XEP-0202).
func TestIMPrivateAndVCard(t *testing.T) {
	_, args := startIM(t)
	mustPython(t, "im_private", args...)
}

// TestIMRosterVersioning: a roster request carrying the version of a
// previous login gets an empty result; one carrying a version older than a
// later change gets the whole roster (RFC 6121 §2.6).
func TestIMRosterVersioning(t *testing.T) {
	_, args := startIM(t)
	mustPython(t, "im_rosterver", args...)
}
