package room

import (
	"bytes"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// FuzzRoom feeds a room whatever three users send it: stanzas separated
// by newlines, each prefixed by the sender's digit and the nick it goes to
// ("0:nick:<presence/>", nick empty for the room itself). The room must
// never panic, every stanza it sends must be addressed to someone who is
// or was in the room or asked something, and its bookkeeping must stay
// consistent.
func FuzzRoom(f *testing.F) {
	f.Add([]byte("0:a:<presence><x xmlns='http://jabber.org/protocol/muc'/></presence>\n0::<iq type='set' id='c'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>\n1:b:<presence/>\n1::<message type='groupchat'><body>hi</body></message>\n0::<iq type='set' id='k'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='b' role='none'/></query></iq>"))
	f.Add([]byte("0:a:<presence/>\n1:b:<presence/>\n1:c:<presence/>\n2:b:<presence/>\n1:b:<message type='chat'><body>pm</body></message>\n0::<iq type='set' id='d'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy/></query></iq>"))
	users := []jid.JID{jid.MustParse("u0@example.org/r"), jid.MustParse("u1@example.org/r"), jid.MustParse("u2@example.net/r")}
	room := jid.MustParse("room@chat.example.org")
	f.Fuzz(func(t *testing.T, script []byte) {
		now := time.Unix(1_800_000_000, 0)
		n := 0
		r := New(room, State{}, nil, Deps{
			Now:         func() time.Time { now = now.Add(time.Second); return now },
			NewStanzaID: func() (string, time.Time) { n++; return string(rune('a'+n%26)) + "id", now },
			NewID:       func() string { n++; return "g" + string(rune('a'+n%26)) },
			Archiving:   true,
			Limits:      DefaultLimits(),
		})
		for line := range bytes.SplitSeq(script, []byte("\n")) {
			parts := bytes.SplitN(line, []byte(":"), 3)
			if len(parts) != 3 || len(parts[0]) != 1 || parts[0][0] < '0' || parts[0][0] > '2' {
				continue
			}
			from := users[parts[0][0]-'0']
			to := room
			if len(parts[1]) > 0 {
				var err error
				if to, err = room.WithResource(string(parts[1])); err != nil {
					continue
				}
			}
			el, err := xmlstream.ParseStanza(parts[2], xmlstream.NSClient)
			if err != nil {
				continue
			}
			res := r.Handle(el, from, to)
			for _, d := range res.Out {
				if d.El == nil || len(d.To) == 0 || d.El.Attr("from") == "" {
					t.Fatalf("bad delivery %+v", d)
				}
				_ = d.El.String()
			}
			count := 0
			for _, o := range r.occ {
				if len(o.sessions) == 0 || r.occ[o.key] != o {
					t.Fatalf("occupant %q without sessions or misfiled", o.nick)
				}
				for _, s := range o.sessions {
					if r.bySess[s.jid.String()] != o {
						t.Fatalf("session %s not indexed", s.jid)
					}
				}
				count += len(o.sessions)
			}
			if count != r.count || len(r.bySess) != count {
				t.Fatalf("counts: %d sessions, count %d, index %d", count, r.count, len(r.bySess))
			}
			if res.Destroyed {
				return
			}
		}
	})
}
