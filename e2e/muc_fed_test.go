package e2e

import (
	"slices"
	"testing"
)

// TestMUCFederation runs multi-user chat across servers with a real
// Prosody and a real ejabberd, each once with certificates both trust
// (SASL EXTERNAL) and once with dialback only:
//
//   - ambrosia-room: alice creates a room on Ambrosia's conference
//     service and carol joins it; bob, a user of the peer, joins over
//     federation. All three see each other's presence with affiliation
//     and role (alice, a moderator, sees bob's real JID), exchange
//     groupchat messages, and alice and carol see bob leave.
//   - peer-room: bob creates a room on the peer's conference service and
//     alice joins it from Ambrosia, with the same checks.
//
// The first needs the conference service itself to federate: its
// stanzas leave from conference.ambrosia.test, and the peer
// authenticates that domain by its certificate or by dialback with
// Ambrosia.
func TestMUCFederation(t *testing.T) {
	for _, peer := range []realPeer{prosodyPeer, ejabberdPeer} {
		t.Run(peer.domain, func(t *testing.T) {
			withPeer(t, peer, func(t *testing.T, p peerRun) {
				testMUCFederation(t, p)
			})
		})
	}
}

func testMUCFederation(t *testing.T, p peerRun) {
	amb := "ambrosia.test"
	p.amb.addUser(t, "alice@"+amb, "alice-pw")
	p.amb.addUser(t, "carol@"+amb, "carol-pw")
	alice, carol := p.user("alice@"+amb, "alice-pw"), p.user("carol@"+amb, "carol-pw")
	room := func(name, service string, owner []string, members [][]string, guest []string) []string {
		args := slices.Concat([]string{"--timeout", "60", "--room", name + "@" + service, "--owner"}, owner)
		for _, m := range members {
			args = append(append(args, "--member"), m...)
		}
		return append(append(args, "--guest"), guest...)
	}
	t.Run("ambrosia-room", func(t *testing.T) {
		mustPython(t, "muc_fed", room("lounge", conference(amb), alice, [][]string{carol}, p.bob())...)
	})
	t.Run("peer-room", func(t *testing.T) {
		mustPython(t, "muc_fed", room("tea", conference(p.domain), p.bob(), nil, alice)...)
	})
	// Each of the four domain pairs had its own stream each way,
	// authenticated as the run intends.
	log := p.amb.Log()
	auth := `"auth":"` + p.method + `"`
	for _, c := range []struct{ local, remote string }{
		{conference(amb), p.domain},
		{amb, conference(p.domain)},
	} {
		if !logHas(log, "outgoing stream up", `"local":"`+c.local+`"`, `"remote":"`+c.remote+`"`, auth) {
			t.Errorf("no outgoing stream from %s to %s with %s", c.local, c.remote, p.method)
		}
		if !logHas(log, "incoming stream authenticated", `"from":"`+c.remote+`"`, `"to":"`+c.local+`"`, auth) {
			t.Errorf("no incoming stream from %s to %s with %s", c.remote, c.local, p.method)
		}
	}
}
