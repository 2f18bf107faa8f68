package irc

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/irc/internal/fakeircd"
)

func TestConfig(t *testing.T) {
	good := DefaultConfig()
	good.Server = "irc.example.org:6697"
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for key, change := range map[string]func(*Config){
		"server":       func(c *Config) { c.Server = "irc.example.org" },
		"server:port":  func(c *Config) { c.Server = "irc.example.org:http" },
		"mode":         func(c *Config) { c.Mode = "bouncer" },
		"tls_ca_file":  func(c *Config) { c.TLSCAFile = "/ca.pem" },
		"nick_suffix":  func(c *Config) { c.NickSuffix = "|x y" },
		"username":     func(c *Config) { c.Username = "a@b" },
		"realname":     func(c *Config) { c.Realname = "a\r\nQUIT" },
		"flood_rate":   func(c *Config) { c.FloodRate = -1 },
		"flood_burst":  func(c *Config) { c.FloodBurst = 0 },
		"tls_ca_file2": func(c *Config) { c.TLS, c.TLSCAFile = true, "/nonexistent.pem" },
		"contact_poll": func(c *Config) { c.ContactPoll = bridge.Duration(time.Millisecond) },
	} {
		c := good
		change(&c)
		if _, err := New(c, quiet()); err == nil {
			t.Errorf("%s: accepted %+v", key, c)
		} else if k, _, _ := strings.Cut(key, ":"); !strings.Contains(err.Error(), strings.TrimSuffix(k, "2")) {
			t.Errorf("%s: the error does not name the key: %v", key, err)
		}
	}
	if _, err := New(good, nil); err == nil {
		t.Error("no logger accepted")
	}
}

func TestDescribe(t *testing.T) {
	n := network(t, "127.0.0.1:6667", "puppet", nil)
	d := n.Describe()
	if d.Name != "IRC" || d.Type != "irc" || d.Mode != bridge.Puppet || d.Registration != nil {
		t.Fatalf("%+v", d)
	}
	if _, ok := d.Session.(bridge.RoomSession); !ok {
		t.Fatal("the session type has no rooms")
	}
	for _, f := range []func(bridge.Session) bool{
		func(s bridge.Session) bool { _, ok := s.(bridge.PresenceSetter); return ok },
		func(s bridge.Session) bool { _, ok := s.(bridge.RoomSubjectSetter); return ok },
		func(s bridge.Session) bool { _, ok := s.(bridge.RoomNickChanger); return ok },
		func(s bridge.Session) bool { _, ok := s.(bridge.RoomKicker); return ok },
	} {
		if !f(d.Session) {
			t.Fatal("an optional interface is missing")
		}
	}
	d = network(t, "127.0.0.1:6667", "transport", nil).Describe()
	if d.Mode != bridge.Transport || len(d.Registration) != 3 || !d.Registration[0].Required || !d.Registration[1].Secret || !d.Registration[2].Secret {
		t.Fatalf("%+v", d)
	}
	for id, room := range map[string]bool{"#go": true, "&local": true, "+modeless": true, "!ABCDEsafe": true, "bob": false, "": false, "[x]": false} {
		if n.IsRoom(id) != room {
			t.Errorf("IsRoom(%q) = %v", id, !room)
		}
	}
}

func TestPuppetNick(t *testing.T) {
	for _, tc := range []struct {
		local, suffix string
		max           int
		want          string
	}{
		{"alice", "", 0, "alice"},
		{"alice.smith", "[x]", 0, "alice_smith[x]"},
		{"42", "", 0, "_42"},
		{"-x", "", 0, "_-x"},
		{"émile", "", 0, "mile"},
		{"日本", "", 0, "xmpp"},
		{"alexandra", "|x", 9, "alexand|x"},
		{"a", "|xmpp", 3, "a|xmpp"},
	} {
		if got := puppetNick(tc.local, tc.suffix, tc.max); got != tc.want {
			t.Errorf("puppetNick(%q, %q, %d) = %q, want %q", tc.local, tc.suffix, tc.max, got, tc.want)
		}
	}
}

func TestOneToOne(t *testing.T) {
	srv, s, rec := start(t)
	bob := fakeircd.Dial(t, srv.Addr(), "bob")
	// IRC -> XMPP, with the IRCv3 tags.
	bob.Send("PRIVMSG alice :\x02hello\x02 \x0304alice")
	e := rec.expect("Message", func(e event) bool { return e.from == "bob" })
	if e.msg.Body != "hello alice" || e.msg.Action || !strings.HasPrefix(string(e.msg.ID), "fake-") || e.msg.Time.IsZero() {
		t.Fatalf("%+v", e.msg)
	}
	bob.Send("PRIVMSG alice :\x01ACTION waves\x01")
	if e := rec.expect("Message", nil); e.msg.Body != "waves" || !e.msg.Action {
		t.Fatalf("%+v", e.msg)
	}
	// XMPP -> IRC.
	if _, err := s.SendMessage(ctx(t), "bob", bridge.Message{Body: "hi bob"}); err != nil {
		t.Fatal(err)
	}
	bob.Expect(`^:alice!alice@127.0.0.1 PRIVMSG bob :hi bob$`)
	if _, err := s.SendMessage(ctx(t), "bob", bridge.Message{Body: "smiles", Action: true}); err != nil {
		t.Fatal(err)
	}
	bob.Expect("PRIVMSG bob :\x01ACTION smiles\x01$")
	long := strings.Repeat("word ", 150)
	if _, err := s.SendMessage(ctx(t), "bob", bridge.Message{Body: "line one\n" + long, Attachments: []bridge.Attachment{{URL: "https://x.example/f.png"}}}); err != nil {
		t.Fatal(err)
	}
	bob.Expect(`PRIVMSG bob :line one$`)
	bob.Expect(`PRIVMSG bob :word word`)
	bob.Expect(`PRIVMSG bob :word word`)
	bob.Expect(`PRIVMSG bob :https://x.example/f.png$`)
	// Errors.
	if _, err := s.SendMessage(ctx(t), "nobody", bridge.Message{Body: "x"}); !errors.Is(err, bridge.ErrNoSuchUser) {
		t.Fatalf("to an unknown nick: %v", err)
	}
	if _, err := s.SendMessage(ctx(t), "bad nick", bridge.Message{Body: "x"}); !errors.Is(err, bridge.ErrNoSuchUser) {
		t.Fatalf("to a bad nick: %v", err)
	}
	if _, err := s.SendMessage(ctx(t), "127.0.0.1", bridge.Message{Body: "x"}); !errors.Is(err, bridge.ErrNotAllowed) {
		t.Fatalf("to the server: %v", err)
	}
	if _, err := s.SendMessage(ctx(t), "bob", bridge.Message{Body: "  "}); err != nil {
		t.Fatalf("a blank message: %v", err)
	}
	// Notices: the server's from its host, services' from their nicks.
	srv.Notice("alice", "*** You are connected")
	if e := rec.expect("Message", func(e event) bool { return e.from == "127.0.0.1" }); e.msg.Body != "*** You are connected" {
		t.Fatalf("%+v", e)
	}
	ns := fakeircd.Dial(t, srv.Addr(), "NickServ")
	ns.Send("NOTICE alice :This nickname is registered.")
	rec.expect("Message", func(e event) bool { return e.from == "NickServ" && e.msg.Body == "This nickname is registered." })
	// CTCP queries are answered, not shown.
	bob.Send("PRIVMSG alice :\x01VERSION\x01")
	bob.Expect("NOTICE bob :\x01VERSION Ambrosia IRC bridge")
	bob.Send("PRIVMSG alice :\x01PING 123\x01")
	bob.Expect("NOTICE bob :\x01PING 123\x01")
	bob.Send("PRIVMSG alice :after")
	if e := rec.expect("Message", func(e event) bool { return e.from == "bob" }); e.msg.Body != "after" {
		t.Fatalf("a CTCP query was shown: %+v", e)
	}
	// An invitation.
	bob.Send("INVITE alice #secret")
	if e := rec.expect("RoomInvited", nil); e.from != "bob" || e.room != "#secret" {
		t.Fatalf("%+v", e)
	}
}

func TestPresence(t *testing.T) {
	srv, s, rec := start(t)
	if err := s.SetPresence(ctx(t), bridge.Presence{Show: bridge.Away, Status: "at\nlunch"}); err != nil {
		t.Fatal(err)
	}
	srv.Expect(t, `^alice: AWAY :at lunch$`)
	s.SetPresence(ctx(t), bridge.Presence{Show: bridge.DND})
	srv.Expect(t, `^alice: AWAY :?Busy$`)
	s.SetPresence(ctx(t), bridge.Presence{Show: bridge.Chat})
	srv.Expect(t, `^alice: AWAY$`)
	if err := s.SetPresence(ctx(t), bridge.Presence{Offline: true}); err != nil {
		t.Fatal(err)
	}
	// Someone away: told by RPL_AWAY when written to.
	bob := fakeircd.Dial(t, srv.Addr(), "bob")
	bob.Send("AWAY :gone fishing")
	bob.Expect(" 306 ")
	if _, err := s.SendMessage(ctx(t), "bob", bridge.Message{Body: "there?"}); err != nil {
		t.Fatal(err)
	}
	if e := rec.expect("Presence", nil); e.from != "bob" || e.pres.Show != bridge.Away || e.pres.Status != "gone fishing" {
		t.Fatalf("%+v", e)
	}
	// The same again is not told again; away-notify tells changes of
	// people in the user's channels.
	s.SendMessage(ctx(t), "bob", bridge.Message{Body: "there?"})
	rec.none("Presence")
	bob.Send("JOIN #go")
	s.JoinRoom(ctx(t), "#go", "alice", "")
	rec.expect("RoomJoined", nil)
	bob.Send("AWAY")
	if e := rec.expect("Presence", nil); e.from != "bob" || e.pres.Show != bridge.Available {
		t.Fatalf("%+v", e)
	}
	if e := rec.expect("RoomPresence", nil); e.part.ID != "bob" || e.part.Presence.Show != bridge.Available {
		t.Fatalf("%+v", e)
	}
	bob.Send("AWAY :brb")
	if e := rec.expect("RoomPresence", nil); e.part.Presence.Show != bridge.Away || e.part.Presence.Status != "brb" {
		t.Fatalf("%+v", e)
	}
}

func participant(info bridge.RoomInfo, nick string) (bridge.Participant, bool) {
	i := slices.IndexFunc(info.Participants, func(p bridge.Participant) bool { return p.Nick == nick })
	if i < 0 {
		return bridge.Participant{}, false
	}
	return info.Participants[i], true
}

func TestChannel(t *testing.T) {
	srv, s, rec := start(t)
	bob := fakeircd.Dial(t, srv.Addr(), "bob")
	carol := fakeircd.Dial(t, srv.Addr(), "carol")
	bob.Send("JOIN #go")
	bob.Send("TOPIC #go :Gophers \x02unite\x02")
	bob.Expect("TOPIC #go")
	carol.Send("JOIN #go")
	carol.Expect(" 366 ")
	srv.Mode("#go", "+v", "carol")
	carol.Expect("MODE #go \\+v carol")

	if err := s.JoinRoom(ctx(t), "#Go", "whatever", ""); err != nil {
		t.Fatal(err)
	}
	e := rec.expect("RoomJoined", nil)
	if e.room != "#Go" || e.info.Subject != "Gophers unite" || e.info.Nick != "alice" || e.info.Self != selfID || len(e.info.Participants) != 3 {
		t.Fatalf("%+v", e.info)
	}
	if p, _ := participant(e.info, "bob"); p.ID != "bob" || p.Role != bridge.RoleModerator {
		t.Fatalf("bob %+v", p)
	}
	if p, _ := participant(e.info, "carol"); p.ID != "carol" || p.Role != bridge.RoleParticipant {
		t.Fatalf("carol %+v", p)
	}
	if p, _ := participant(e.info, "alice"); p.ID != selfID {
		t.Fatalf("alice %+v", p)
	}
	// Joining again (another client of the user's) answers at once.
	s.JoinRoom(ctx(t), "#go", "alice", "")
	if e := rec.expect("RoomJoined", nil); e.room != "#go" || len(e.info.Participants) != 3 {
		t.Fatalf("%+v", e.info)
	}

	// Messages both ways.
	bob.Send("PRIVMSG #go :hello all")
	if e := rec.expect("RoomMessage", nil); e.room != "#go" || e.from != "bob" || e.msg.Body != "hello all" {
		t.Fatalf("%v", e)
	}
	if _, err := s.SendRoomMessage(ctx(t), "#go", bridge.Message{Body: "hi"}); err != nil {
		t.Fatal(err)
	}
	bob.Expect(`^(@\S+ )?:alice!alice@127.0.0.1 PRIVMSG #go :hi$`)
	if _, err := s.SendRoomMessage(ctx(t), "#go", bridge.Message{Body: "dances", Action: true}); err != nil {
		t.Fatal(err)
	}
	bob.Expect("PRIVMSG #go :\x01ACTION dances\x01")
	if _, err := s.SendRoomMessage(ctx(t), "#elsewhere", bridge.Message{Body: "x"}); !errors.Is(err, bridge.ErrNoSuchUser) {
		t.Fatalf("to a channel that does not exist: %v", err)
	}

	// Comings and goings, modes.
	dave := fakeircd.Dial(t, srv.Addr(), "dave")
	dave.Send("JOIN #go")
	if e := rec.expect("RoomPresence", nil); e.part.ID != "dave" || e.part.Nick != "dave" {
		t.Fatalf("%v", e)
	}
	dave.Send("PART #go :later")
	if e := rec.expect("RoomLeft", nil); e.from != "dave" || e.text != "later" || e.by != "" {
		t.Fatalf("%v", e)
	}
	bob.Send("MODE #go +o carol")
	if e := rec.expect("RoomPresence", nil); e.part.ID != "carol" || e.part.Role != bridge.RoleModerator {
		t.Fatalf("%v", e)
	}
	srv.Mode("#go", "+q", "bob")
	if e := rec.expect("RoomPresence", nil); e.part.ID != "bob" || e.part.Role != bridge.RoleOwner {
		t.Fatalf("%v", e)
	}

	// Topics both ways.
	bob.Send("TOPIC #go :Go 2")
	if e := rec.expect("RoomSubject", nil); e.by != "bob" || e.text != "Go 2" {
		t.Fatalf("%v", e)
	}
	if err := s.SetRoomSubject(ctx(t), "#go", "Go 3"); err != nil {
		t.Fatal(err)
	}
	if e := rec.expect("RoomSubject", nil); e.by != selfID || e.text != "Go 3" {
		t.Fatalf("%v", e)
	}
	bob.Expect(`TOPIC #go :Go 3`)

	// Kicks both ways.
	if err := s.Kick(ctx(t), "#go", "carol", "no"); !errors.Is(err, bridge.ErrNotAllowed) {
		t.Fatalf("kick without being an operator: %v", err)
	}
	srv.Mode("#go", "+o", "alice")
	bob.Send("NOTICE @#go :ops only")
	if e := rec.expect("RoomMessage", nil); e.from != "bob" || e.msg.Body != "ops only" {
		t.Fatalf("%v", e)
	}
	if err := s.Kick(ctx(t), "#go", "nobody", ""); !errors.Is(err, bridge.ErrNoSuchUser) {
		t.Fatalf("kick of nobody: %v", err)
	}
	if err := s.Kick(ctx(t), "#go", "carol", "be nice"); err != nil {
		t.Fatal(err)
	}
	if e := rec.expect("RoomLeft", nil); e.from != "carol" || e.text != "be nice" || e.by != selfID {
		t.Fatalf("%v", e)
	}
	dave.Send("JOIN #go")
	rec.expect("RoomPresence", func(e event) bool { return e.part.ID == "dave" })
	bob.Send("KICK #go dave :spam")
	if e := rec.expect("RoomLeft", nil); e.from != "dave" || e.text != "spam" || e.by != "bob" {
		t.Fatalf("%v", e)
	}
	// QUIT leaves every channel.
	dave.Send("JOIN #go")
	rec.expect("RoomPresence", func(e event) bool { return e.part.ID == "dave" })
	dave.Send("QUIT :gone")
	if e := rec.expect("RoomLeft", nil); e.from != "dave" || e.text != "Quit: gone" {
		t.Fatalf("%v", e)
	}
	// Kicked out, and back.
	bob.Send("KICK #go alice :bye")
	if e := rec.expect("RoomLeft", nil); e.from != selfID || e.by != "bob" || e.text != "bye" {
		t.Fatalf("%v", e)
	}
	bob.Send("PRIVMSG #go :not for alice")
	rec.none("RoomMessage")
	s.JoinRoom(ctx(t), "#go", "alice", "")
	rec.expect("RoomJoined", nil)
	if err := s.LeaveRoom(ctx(t), "#go"); err != nil {
		t.Fatal(err)
	}
	srv.Expect(t, `^alice: PART #go$`)
	bob.Expect(`:alice!alice@127.0.0.1 PART #go`)
	rec.none("RoomLeft")
}

func TestTopicRefused(t *testing.T) {
	srv, s, rec := start(t)
	srv.SetChannel("#locked", fakeircd.Channel{TopicOps: true, Topic: "Keep out"})
	bob := fakeircd.Dial(t, srv.Addr(), "bob")
	bob.Send("JOIN #locked")
	bob.Expect(" 366 ")
	s.JoinRoom(ctx(t), "#locked", "alice", "")
	if e := rec.expect("RoomJoined", nil); e.info.Subject != "Keep out" {
		t.Fatalf("%+v", e.info)
	}
	if err := s.SetRoomSubject(ctx(t), "#locked", "mine"); !errors.Is(err, bridge.ErrNotAllowed) {
		t.Fatalf("%v", err)
	}
	if err := s.SetRoomSubject(ctx(t), "#notin", "mine"); !errors.Is(err, bridge.ErrNotAllowed) {
		t.Fatalf("%v", err)
	}
}

func TestJoinRefused(t *testing.T) {
	srv, s, rec := start(t)
	srv.SetChannel("#key", fakeircd.Channel{Key: "sesame"})
	srv.SetChannel("#invite", fakeircd.Channel{InviteOnly: true})
	srv.SetChannel("#ban", fakeircd.Channel{Bans: []string{"alice"}})
	srv.SetChannel("#full", fakeircd.Channel{Limit: 1})
	bob := fakeircd.Dial(t, srv.Addr(), "bob")
	bob.Send("JOIN #full")
	bob.Expect(" 366 ")
	for room, want := range map[bridge.RoomID]error{
		"#key":    bridge.ErrBadCredentials,
		"#invite": bridge.ErrNotAllowed,
		"#ban":    bridge.ErrNotAllowed,
		"#full":   bridge.ErrUnavailable,
		"+nope":   bridge.ErrNoSuchUser,
	} {
		if err := s.JoinRoom(ctx(t), room, "alice", ""); err != nil {
			t.Fatal(err)
		}
		e := rec.expect("RoomJoinFailed", nil)
		if e.room != room || !errors.Is(e.err, want) {
			t.Errorf("%s: %v, want %v", room, e.err, want)
		}
	}
	if err := s.JoinRoom(ctx(t), "#a b", "alice", ""); !errors.Is(err, bridge.ErrNoSuchUser) {
		t.Fatalf("a bad channel name: %v", err)
	}
	// With the key; and invited.
	s.JoinRoom(ctx(t), "#key", "alice", "sesame")
	rec.expect("RoomJoined", func(e event) bool { return e.room == "#key" })
	srv.Expect(t, `^alice: JOIN #key sesame$`)
	bob.Send("INVITE alice #invite")
	rec.expect("RoomInvited", nil)
	s.JoinRoom(ctx(t), "#invite", "alice", "")
	rec.expect("RoomJoined", func(e event) bool { return e.room == "#invite" })
}

func TestNickChanges(t *testing.T) {
	srv, s, rec := start(t)
	bob := fakeircd.Dial(t, srv.Addr(), "bob")
	bob.Send("JOIN #go,#rust")
	bob.Expect("366 bob #rust")
	s.JoinRoom(ctx(t), "#go", "alice", "")
	rec.expect("RoomJoined", nil)
	s.JoinRoom(ctx(t), "#rust", "alice", "")
	rec.expect("RoomJoined", nil)

	// Someone else: the same id in every channel they share.
	bob.Send("NICK robert")
	got := map[bridge.RoomID]bool{}
	for range 2 {
		e := rec.expect("RoomNick", nil)
		if e.from != "bob" || e.text != "robert" {
			t.Fatalf("%v", e)
		}
		got[e.room] = true
	}
	if !got["#go"] || !got["#rust"] {
		t.Fatalf("nick change told in %v", got)
	}
	bob.Send("PRIVMSG #go :still me")
	if e := rec.expect("RoomMessage", nil); e.from != "bob" {
		t.Fatalf("%v", e)
	}
	bob.Send("PRIVMSG alice :one to one")
	if e := rec.expect("Message", nil); e.from != "robert" {
		t.Fatalf("one to one, the nick of the moment: %v", e)
	}
	// A private message to the participant (id bob) reaches robert.
	if _, err := s.SendMessage(ctx(t), "bob", bridge.Message{Body: "psst"}); err != nil {
		t.Fatal(err)
	}
	bob.Expect(`PRIVMSG robert :psst$`)
	// Someone new takes the nick bob: robert is seated again as himself.
	newBob := fakeircd.Dial(t, srv.Addr(), "bob")
	newBob.Send("JOIN #go")
	if e := rec.expect("RoomLeft", nil); e.from != "bob" || e.room != "#rust" && e.room != "#go" {
		t.Fatalf("%v", e)
	}
	rec.expect("RoomPresence", func(e event) bool { return e.part.ID == "robert" && e.part.Nick == "robert" })
	rec.expect("RoomPresence", func(e event) bool { return e.part.ID == "bob" && e.room == "#go" })
	if _, err := s.SendMessage(ctx(t), "bob", bridge.Message{Body: "new bob?"}); err != nil {
		t.Fatal(err)
	}
	newBob.Expect(`PRIVMSG bob :new bob\?$`)
	// And back: robert becomes bob2, then robert again.
	bob.Send("NICK bob2")
	for range 2 {
		rec.expect("RoomNick", func(e event) bool { return e.from == "robert" && e.text == "bob2" })
	}
	bob.Send("NICK robert")
	for range 2 {
		rec.expect("RoomNick", func(e event) bool { return e.from == "robert" && e.text == "robert" })
	}
	if len(s.ids) != 0 || len(s.nicks) != 0 {
		t.Fatalf("ids left: %v %v", s.ids, s.nicks)
	}

	// The user's own nick: everywhere at once.
	if err := s.SetRoomNick(ctx(t), "#go", "alicia"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if e := rec.expect("RoomNick", nil); e.from != selfID || e.text != "alicia" {
			t.Fatalf("%v", e)
		}
	}
	if err := s.SetRoomNick(ctx(t), "#go", "robert"); !errors.Is(err, bridge.ErrConflict) {
		t.Fatalf("a nick in use: %v", err)
	}
	if err := s.SetRoomNick(ctx(t), "#go", "9lives"); !errors.Is(err, bridge.ErrNotAllowed) {
		t.Fatalf("a bad nick: %v", err)
	}
	if err := s.SetRoomNick(ctx(t), "#go", "alicia"); err != nil {
		t.Fatalf("the same nick: %v", err)
	}
	// Joining with the new nick; the user's messages are not echoed.
	s.LeaveRoom(ctx(t), "#rust")
	s.JoinRoom(ctx(t), "#rust", "alice", "")
	if e := rec.expect("RoomJoined", nil); e.info.Nick != "alicia" {
		t.Fatalf("%+v", e.info)
	}
}

func TestTransport(t *testing.T) {
	srv := fakeircd.Start(t, fakeircd.Options{Password: "serverpw"})
	n := network(t, srv.Addr(), "transport", nil)
	rec := newRecorder(t)
	for _, creds := range []map[string]string{
		{"nick": "alice", "password": "wrong"},
		{"nick": "bad nick", "password": "serverpw"},
		{"nick": "", "password": "serverpw"},
		{"nick": "alice", "password": "serverpw\r\nJOIN #x"},
		{"nick": "alice", "password": "serverpw", "nickserv": "pw\nPRIVMSG bob :x"},
	} {
		if _, err := n.Login(ctx(t), bridge.Account{JID: "alice@example.org", Credentials: creds}, rec); !errors.Is(err, bridge.ErrBadCredentials) {
			t.Errorf("%v: %v", creds, err)
		}
	}
	ns := fakeircd.DialPassword(t, srv.Addr(), "NickServ", "serverpw")
	s, _ := login(t, n, "alice@example.org", map[string]string{"nick": "Ally", "password": "serverpw", "nickserv": "s3cret pw"})
	if s.c.Nick() != "Ally" {
		t.Fatalf("nick %q", s.c.Nick())
	}
	ns.Expect(`^:Ally!ally@127.0.0.1 PRIVMSG NickServ :IDENTIFY Ally s3cret pw$`)
	srv.Expect(t, `^\*: PASS serverpw$`)
}

func TestPuppetConfig(t *testing.T) {
	srv := fakeircd.Start(t, fakeircd.Options{Password: "pw", NickLen: 9})
	n := network(t, srv.Addr(), "puppet", func(c *Config) {
		c.Password, c.NickSuffix, c.Username, c.Realname = "pw", "|x", "bridge", "Bridged user"
	})
	s, _ := login(t, n, "alexandra.smith@example.org", nil)
	// Too long for the server: cut, keeping the suffix; learnt for the
	// next login.
	if s.c.Nick() != "alexandra" {
		t.Fatalf("nick %q", s.c.Nick())
	}
	srv.Expect(t, `: USER bridge 0 \* :Bridged user$`)
	s2, _ := login(t, n, "alexandra.smith@example.com", nil)
	if s2.c.Nick() != "alexand|x" {
		t.Fatalf("nick %q", s2.c.Nick())
	}
}

func TestDisconnected(t *testing.T) {
	srv, s, rec := start(t)
	srv.Drop("alice")
	if e := rec.expect("Disconnected", nil); e.err == nil {
		t.Fatal("no reason")
	}
	if _, err := s.SendMessage(ctx(t), "bob", bridge.Message{Body: "x"}); !errors.Is(err, bridge.ErrUnavailable) {
		t.Fatalf("%v", err)
	}
	// Told once more, for a bridge that did not hold the session yet.
	rec.expect("Disconnected", nil)
	s.SendMessage(ctx(t), "bob", bridge.Message{Body: "x"})
	rec.none("Disconnected")

	// A logout is no disconnection.
	s2, rec2 := login(t, network(t, srv.Addr(), "puppet", nil), "carol@example.org", nil)
	if err := s2.Logout(ctx(t)); err != nil {
		t.Fatal(err)
	}
	srv.Expect(t, `^carol: QUIT :Logged out of XMPP$`)
	rec2.none("Disconnected")
	if err := s2.JoinRoom(ctx(t), "#go", "carol", ""); !errors.Is(err, bridge.ErrUnavailable) {
		t.Fatalf("%v", err)
	}
}

func TestLoginFails(t *testing.T) {
	srv := fakeircd.Start(t, fakeircd.Options{})
	addr := srv.Addr()
	srv.Close()
	n := network(t, addr, "puppet", nil)
	if _, err := n.Login(ctx(t), bridge.Account{JID: "alice@example.org"}, newRecorder(t)); !errors.Is(err, bridge.ErrUnavailable) {
		t.Fatalf("no server: %v", err)
	}
	c, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	time.Sleep(2 * time.Millisecond)
	if _, err := n.Login(c, bridge.Account{JID: "alice@example.org"}, newRecorder(t)); !errors.Is(err, bridge.ErrTimeout) {
		t.Fatalf("too late: %v", err)
	}
}
