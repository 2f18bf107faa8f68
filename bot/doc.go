// Package bot runs a program as an ordinary account on any XMPP server
// (Ambrosia, Prosody, ejabberd…): a "system user" such as
// calc@example.org that logs in with a password as any client does,
// receives messages, presence and requests as typed events, and answers
// them. Nothing is installed or configured on the server: an account is
// all it takes.
//
//	b, err := bot.New(bot.Config{JID: "calc@example.org", Password: pw}, slog.Default())
//	if err != nil { … }
//	b.OnJSON(bot.HandleJSON(func(ctx context.Context, from string, r request) (any, error) {
//		return map[string]int{"result": r.A + r.B}, nil // {"op":"add","a":1,"b":2} → {"result":3}
//	}))
//	b.OnMessage(func(ctx context.Context, m *bot.Message) { _ = b.Send(ctx, m.From, "hello") })
//	err = b.Run(ctx) // until ctx is done; reconnects by itself
//
// # A bot, a component, a bridge
//
// An external component (XEP-0114; the bridge package attaches as one) is
// a domain of its own, such as calc.example.org: it sees every stanza
// sent to any address of the domain and may send from any of them, but
// the server's operator must declare it (a secret, a port) and it has no
// roster, presence or offline storage unless it builds them. A bridge
// (package bridge) puts a whole other chat system on the network, with
// an address for each of its users. A bot is one address on a domain
// someone else runs: it needs only an account, works the same on every
// server, and the server keeps its roster, its presence subscriptions
// and the messages sent while it is away. The price is a hop: everything
// reaches the bot through its server's session for the account, with the
// limits the server sets for its users, and the bot speaks only as
// itself.
//
// # Logging in
//
// Run connects to Config.Server, or to the SRV records of the JID's domain
// (_xmpps-client for direct TLS, _xmpp-client for STARTTLS), and always
// encrypts, checking the certificate against the JID's domain (only
// Config.Plaintext, for tests on loopback, skips TLS). Where the server
// offers Extensible SASL (XEP-0388), the bot uses it, with Bind 2
// (XEP-0386) to bind its resource and enable Stream Management in the
// same round trip, and asks for a FAST token (XEP-0484); the next login
// presents the token (HT-SHA-256-EXPR, -ENDP or -NONE, whichever the
// connection allows) instead of the password, and falls back to the
// password on the same stream when the token is refused. Tokens live in
// memory unless Config.Tokens keeps them elsewhere. Servers without SASL2
// get RFC 6120 SASL, resource binding and <enable/> instead. The password
// goes through SCRAM (SHA-512, -256 or -1), with channel binding (-PLUS)
// when the server lists a binding type the bot can compute (XEP-0440);
// PLAIN is used only over TLS and only when nothing else is offered.
//
// A refused password ends Run with an *AuthError. Anything else (the
// server down, a stream error, a lost connection) is logged and followed
// by a new attempt after a delay that doubles from Config.ReconnectMin
// to Config.ReconnectMax, with jitter. A server that stays silent for
// Config.KeepAlive is probed (<r/>, or a ping without Stream Management)
// and the connection dropped if no answer comes within Config.Timeout.
//
// Every login is logged at info level ("logged in", with the mechanism,
// what the server offered and what was used) and reported to the
// function set with OnSession; Session returns it.
//
// # Stream Management
//
// With Stream Management (XEP-0198) on, the bot counts the stanzas it
// receives and acknowledges them as they arrive; what it sends stays
// queued until the server acknowledges it. When the connection drops,
// the bot resumes the session on the next connection (inline in SASL2
// where offered): the server sends again only what the bot had not
// counted, and the bot sends again only what the server had not
// counted, so that each stanza arrives once either way and no handler
// sees a stanza twice. A stanza counts as received once it is queued for
// a handler (or answered, or refused, see below), not once the handler
// is done: a bot that crashes loses what it was working on, as a client
// does.
//
// If the server no longer has the session, the bot binds a new one,
// sends its presence, then everything the server never acknowledged:
// sent at least once, and twice to its recipients in the rare case that
// the server received it but the acknowledgement was lost with the old
// connection and the server gives no count on failure. Messages the
// server stores meanwhile come back through offline storage; one the bot
// had already received arrives marked with a delay, and is recognized by
// its sender and id and not handed to a handler again. Without Stream
// Management nothing is resent: what was written to a connection that
// fails may be lost.
//
// Send, SendJSON, SendMessage and the others return once the stanza is
// queued; they wait only while Config.MaxQueued stanzas are waiting to
// be sent or acknowledged. They may be called before Run (the stanzas go
// out once logged in) and fail with ErrClosed after it.
//
// # Handlers
//
// One goroutine reads the connection and never waits for a handler:
// handlers may themselves wait for the server (SendIQ, Roster), and the
// reader must also answer the server's acknowledgement requests and
// pings. It hands each message, presence and IQ request to one of
// Config.Workers goroutines, chosen by the sender's bare JID, through a
// queue of Config.QueueLength stanzas: a sender's stanzas are handled in
// order, one at a time, and a slow handler delays only the senders that
// share its queue. When that queue is full the stanza is refused with a
// resource-constraint error (of type wait, so that the sender may try
// again later), or dropped for a presence; that keeps memory bounded
// whatever the senders do, and is logged.
//
// The bot answers itself pings (XEP-0199), service discovery (XEP-0030,
// as a client of type bot listing the namespaces it handles) and roster
// pushes; an IQ request no handler takes gets service-unavailable, as
// RFC 6120 wants. An IQ answer goes to the SendIQ that waits for it only
// if it comes from the address the request went to.
//
// JSON containers (XEP-0335, <json xmlns='urn:xmpp:json:0'>) in messages
// (other than group chat messages and errors) and in IQ requests go to
// the OnJSON handler, whose reply is sent back in the same kind of
// stanza; HandleJSON decodes them
// into a type of the program's. SendJSON sends one unasked.
//
// When Run's context is done the bot stops handing out stanzas (those
// that arrive from then on are left unacknowledged for the server to
// keep), lets the handlers finish what they have for up to
// Config.StopGrace, sends their replies, then closes the stream.
package bot
