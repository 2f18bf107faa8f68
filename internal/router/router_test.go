package router

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

type recorder struct{ got []Stanza }

func (r *recorder) HandleStanza(_ context.Context, s Stanza) { r.got = append(r.got, s) }

func msg(from, to, typ string) Stanza {
	el := xmlstream.NewElement(xmlstream.NSClient, "message")
	el.SetAttr("from", from)
	el.SetAttr("to", to)
	if typ != "" {
		el.SetAttr("type", typ)
	}
	return Stanza{El: el, From: jid.MustParse(from), To: jid.MustParse(to)}
}

func TestRouteAndBounce(t *testing.T) {
	r := New(slog.New(slog.DiscardHandler))
	a, b := &recorder{}, &recorder{}
	if err := r.Register("a.example", a); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("b.example", b); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("b.example", a); !errors.Is(err, ErrDomainTaken) {
		t.Fatalf("double registration: %v", err)
	}
	r.Route(context.Background(), msg("x@a.example/r", "y@b.example", "chat"))
	if len(b.got) != 1 {
		t.Fatalf("b got %d", len(b.got))
	}
	// Unknown domain: the sender gets remote-server-not-found.
	r.Route(context.Background(), msg("x@a.example/r", "y@nowhere.example", "chat"))
	if len(a.got) != 1 || !strings.Contains(a.got[0].El.String(), "remote-server-not-found") || a.got[0].To.String() != "x@a.example/r" {
		t.Fatalf("bounce: %+v", a.got)
	}
	// Errors never bounce.
	r.Route(context.Background(), msg("x@a.example/r", "y@nowhere.example", "error"))
	if len(a.got) != 1 {
		t.Fatalf("error bounced")
	}
	r.Unregister("b.example", a) // not the owner: no effect
	if _, ok := r.Lookup("b.example"); !ok {
		t.Fatal("unregistered by a non-owner")
	}
	r.Unregister("b.example", b)
	if got := strings.Join(r.Domains(), ","); got != "a.example" {
		t.Fatalf("domains %s", got)
	}
	if _, ok := r.SessionManager("a.example"); ok {
		t.Fatal("a recorder is not a session manager")
	}
}
