package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// The multi-user chat tests (XEP-0045 and what modern clients add to it)
// drive several slixmpp sessions from one script each
// (testdata/muc_*.py), sending raw stanzas and checking what every
// occupant receives, in order.

const (
	mucService   = "conference." + domain
	mucEve       = "eve@localhost"
	mucFrank     = "frank@localhost"
	mucEvePass   = "eve-Secret-5"
	mucFrankPass = "frank-Secret-6"
	// mucScriptTimeout is the deadline each muc_*.py keeps for its whole
	// run, within the harness's scriptTimeout.
	mucScriptTimeout = "75"
)

// startMUC starts a server with the given TOML configuration (empty for
// the defaults, under which the conference service runs) and alice, bob,
// carol, dave, eve and frank registered, and returns the arguments that
// hand a script the connection, the accounts and the service.
func startMUC(t *testing.T, conf string) (*Server, []string) {
	t.Helper()
	requireTools(t, "slixmpp")
	var opts ServerOptions
	if conf != "" {
		path := filepath.Join(t.TempDir(), "ambrosia.toml")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		opts.ExtraArgs = []string{"--config", path}
	}
	s := startServer(t, opts)
	for _, u := range [][2]string{{alice, alicePass}, {bob, bobPass}, {imCarol, imCarolPass}, {imDave, imDavePass}, {mucEve, mucEvePass}, {mucFrank, mucFrankPass}} {
		addUser(t, s, u[0], u[1])
	}
	return s, mucArgs(s)
}

// mucArgs are a script's connection, accounts and service.
func mucArgs(s *Server) []string {
	return append(s.clientArgs(false), "--timeout", mucScriptTimeout, "--mech", "SCRAM-SHA-256",
		"--service", mucService,
		"--user", alice, alicePass,
		"--user", bob, bobPass,
		"--user", imCarol, imCarolPass,
		"--user", imDave, imDavePass,
		"--user", mucEve, mucEvePass,
		"--user", mucFrank, mucFrankPass)
}

// TestMUC runs the scenarios that need no particular [muc] settings on one
// server, each in rooms of its own.
func TestMUC(t *testing.T) {
	_, args := startMUC(t, "")

	// Join: a reserved room created, locked until configured through the
	// form, and entered with status codes 110, 100, 170, 201 and 210, the
	// roster before the self-presence, history limited by maxstanzas,
	// maxchars, seconds and since, the subject last (which a participant
	// may not change); nick changes (303) and conflicts; one nick from two
	// resources, which leaves with the last of them, even on a dropped
	// connection; instant rooms, gone with their last occupant.
	t.Run("Join", func(t *testing.T) { mustPython(t, "muc_join", args...) })

	// RolesAndAffiliations: moderator granted, kick (307) and ban (301)
	// with reasons seen by every occupant, the banned user refused
	// (forbidden); voice in a moderated room granted and revoked; member,
	// admin and owner lists read and edited; a moderator kicking an owner
	// (not-allowed) and removing the last owner (conflict) refused.
	t.Run("RolesAndAffiliations", func(t *testing.T) { mustPython(t, "muc_admin", args...) })

	// RoomTypes: password-protected (not-authorized), members-only
	// (registration-required, its archive closed, membership by
	// invitation), full (service-unavailable), turned members-only (322),
	// semi- and non-anonymous (who sees real JIDs, 100, 172), hidden and
	// locked rooms kept out of the directory, which pages with RSM;
	// destruction with the alternate venue and reason.
	t.Run("RoomTypes", func(t *testing.T) { mustPython(t, "muc_types", args...) })

	// Messages: reflection with the room's stanza-id and the sender's
	// occupant-id (made-up ones dropped); private messages to the right
	// real JID only, marked muc#user; item-not-found and not-acceptable;
	// a forged 'from' delivered as the real sender; a mediated invitation
	// and its decline, a direct one (XEP-0249); a voice request reaching
	// the moderator only and approved.
	t.Run("Messages", func(t *testing.T) { mustPython(t, "muc_messages", args...) })

	// Registration: the jabber:iq:register form, the nickname reserved and
	// read back (registered, x-roomuser-item, member list), refused to
	// others (conflict) until the registration is cancelled.
	t.Run("Registration", func(t *testing.T) { mustPython(t, "muc_register", args...) })

	// Modern: disco#info of service and room (features, muc#roominfo),
	// the room archive paged with RSM (XEP-0313), self-ping (XEP-0410),
	// moderation with its tombstone (XEP-0425), the room avatar
	// (XEP-0486).
	t.Run("Modern", func(t *testing.T) { mustPython(t, "muc_modern", args...) })
}

// TestMUCLimits runs a server whose [muc] lets an occupant send three
// messages at once, then one every five seconds, and lets only alice
// create rooms: a burst of six is cut after three, the excess answered
// resource-constraint and seen by nobody; bob may not create a room
// (not-allowed). It also checks a nickname of spaces only (jid-malformed)
// and configuration forms with an unknown field (not-acceptable) or an
// invalid value (bad-request).
func TestMUCLimits(t *testing.T) {
	_, args := startMUC(t, `[muc]
message_rate = 0.2
message_burst = 3
create = "admins"
admins = ["`+alice+`"]
`)
	mustPython(t, "muc_limits", append(args, "--burst", "3", "--creator-only", alice)...)
}

// TestMUCPersistence stops the server under a persistent room and a
// temporary one, whose occupants are told (332), and starts it again on
// the same data directory: the persistent room's configuration,
// affiliations, registered nickname, avatar, subject and archive (the same
// stanza-ids, in order, also filtered by occupant) are back, its history
// comes from the archive, new messages are archived after the old ones,
// and the temporary room is gone.
func TestMUCPersistence(t *testing.T) {
	s, args := startMUC(t, "")
	before := startPython(t, "muc_persist", append(args, "--phase", "before")...)
	before.waitLine(t, "READY", 60*time.Second)
	s.Stop(t)
	out := before.wait(t)
	t.Logf("muc_persist.py --phase before:\n%s", out)
	m := regexp.MustCompile(`(?m)^stanza-ids: (.+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the first phase printed no stanza-ids:\n%s", out)
	}
	s2 := startServer(t, ServerOptions{DataDir: s.DataDir})
	mustPython(t, "muc_persist", append(mucArgs(s2), "--phase", "after", "--stanza-ids", m[1])...)
}

// TestMUCProfanity drives profanity through tmux as a user would: alice
// creates a room with /join and accepts the default configuration, a
// slixmpp client logged in as bob enters it and finds her there as its
// owner, and each reads what the other says in the room.
func TestMUCProfanity(t *testing.T) {
	tools := requireProfanity(t)
	s := startWithUsers(t)
	const (
		room      = "lounge@" + mucService
		fromAlice = "hello room from profanity"
		fromBob   = "hello alice from slixmpp"
	)
	peer := startPython(t, "muc_profanity_peer", append(s.clientArgs(false), "--timeout", mucScriptTimeout,
		"--jid", bob, "--password", bobPass, "--room", room, "--nick", "bob",
		"--expect-nick", "alice", "--body", fromAlice, "--reply", fromBob)...)
	p := startProfanity(t, tools, s, alice, alicePass, s.CAFile)
	p.waitScreen(t, alice+"/profanity logged in successfully", "the login", 20*time.Second,
		"TLS certificate verification failed", "Login failed")

	p.tmux.typeLine(t, "/join "+room+" nick alice")
	p.waitScreen(t, "Use '/room accept' to accept the defaults", "the new room's lock", 20*time.Second)
	p.tmux.typeLine(t, "/room accept")
	p.waitScreen(t, "Room unlocked.", "the room unlocked", 20*time.Second)
	peer.waitLine(t, "JOINED", 30*time.Second)
	// profanity does not announce arrivals by default; /who lists the
	// room as it knows it, which may be before bob's presence reached it:
	// ask again until it lists him.
	for try := 0; ; try++ {
		p.tmux.typeLine(t, "/who")
		if p.screenShows("2 occupants: alice, bob", 2*time.Second) {
			break
		}
		if try == 10 {
			t.Fatalf("profanity did not list bob in the room after %d /who\n%s", try+1, p.diagnostics())
		}
	}

	p.tmux.typeLine(t, fromAlice)
	peer.waitLine(t, "REPLIED", 30*time.Second)
	p.waitScreen(t, fromBob, "bob's message", 20*time.Second)
	if !screenLine(p.tmux.screen(), "bob: ", fromBob) {
		t.Errorf("bob's message is not shown as his\n%s", p.diagnostics())
	}
	peer.wait(t)

	p.tmux.typeLine(t, "/quit")
	p.waitExit(t, 10*time.Second)
}
