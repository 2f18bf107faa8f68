package bridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/ambrosia-xmpp/ambrosia/bridge/internal/store"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Local is a bridge served with its XMPP side in the same process, as
// tests of a network do (see bridgetest.Attach): no server, no socket.
type Local struct {
	b   *Bridge
	st  *store.Store
	rt  *router.Router
	ctx context.Context
}

// ServeLocal serves the bridge with the XMPP side in this process: every
// stanza the bridge sends goes to deliver, serialized in jabber:client
// with its from and to; Local.Send hands the bridge a stanza as if XMPP
// sent it. deliver is called on the bridge's goroutines and must not
// block. The store is opened in the configuration's DataDir; Close ends
// it all.
func (b *Bridge) ServeLocal(ctx context.Context, deliver func(stanza []byte)) (*Local, error) {
	st, err := store.Open(ctx, b.cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	rt := router.New(b.log)
	rt.SetFallback(localOut(deliver))
	if err := b.attach(rt, st); err != nil {
		st.Close()
		return nil, err
	}
	if s, ok := b.net.(Starter); ok {
		if err := s.Start(ctx, b); err != nil {
			st.Close()
			return nil, fmt.Errorf("bridge: start %s: %w", b.desc.Name, err)
		}
	}
	return &Local{b: b, st: st, rt: rt, ctx: ctx}, nil
}

type localOut func([]byte)

func (f localOut) HandleStanza(_ context.Context, s router.Stanza) {
	f(s.El.AppendXML(nil, xmlstream.NSClient))
}

// Send hands the bridge one stanza as if the XMPP network sent it; it
// needs its from and to.
func (l *Local) Send(stanza []byte) error {
	el, err := xmlstream.ParseStanza(stanza, xmlstream.NSClient)
	if err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	from, err1 := jid.Parse(el.Attr("from"))
	to, err2 := jid.Parse(el.Attr("to"))
	if err := errors.Join(err1, err2); err != nil || from.IsZero() || to.IsZero() {
		return fmt.Errorf("bridge: a stanza needs its from and to: %v", err)
	}
	l.rt.Route(l.ctx, router.Stanza{El: el, From: from, To: to})
	return nil
}

// Close logs every session out and closes the store.
func (l *Local) Close() error {
	l.b.shutdown()
	l.b.idmap.flush()
	return l.st.Close()
}
