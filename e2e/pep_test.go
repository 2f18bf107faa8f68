package e2e

import "testing"

// TestPEPAvatarNotification: alice and bob subscribe to each other, bob's
// client asks for avatar metadata through its entity capabilities
// (XEP-0115, +notify), alice publishes an avatar (XEP-0084) and bob gets
// the metadata event (XEP-0163); carol, who is not alice's contact, is
// refused alice's presence-access node.
func TestPEPAvatarNotification(t *testing.T) {
	_, args := startIM(t)
	mustPython(t, "pep_avatar", args...)
}

// TestPEPBookmarksSurviveRestart: a bookmark published on PEP with the
// publish-options of XEP-0402 is read back after a restart.
func TestPEPBookmarksSurviveRestart(t *testing.T) {
	s, args := startIM(t)
	mustPython(t, "pep_bookmarks", append(args, "--phase", "publish")...)
	s.Stop(t)
	s2 := startServer(t, ServerOptions{DataDir: s.DataDir})
	mustPython(t, "pep_bookmarks", append(append(s2.clientArgs(false), "--mech", "SCRAM-SHA-256", "--user", alice, alicePass), "--phase", "fetch")...)
}
