// Package linechat is the smallest bridge worth writing: it puts a chat
// server that speaks a line protocol on XMPP, one-to-one text only, in
// Puppet mode. Its users become user@<the bridge's domain>; each XMPP user
// who writes to one gets a connection of their own, named after them.
//
// The protocol: a client sends "USER name", then "MSG to id text" lines;
// the server sends "MSG from id text" lines, which the client acknowledges
// with "ACK id" once it has them safe (the server sends again what was not
// acknowledged when the client comes back), and "ERR to reason" when a
// message cannot be delivered. Ids let either side drop a copy it had.
//
// Everything else (addresses, XMPP, logins, errors, the way onto the XMPP
// network) is the bridge package's: see the example of Network.
package linechat

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
)

// Network is the line chat server at Addr.
type Network struct{ Addr string }

// Describe implements bridge.Network.
func (n *Network) Describe() bridge.Description {
	return bridge.Description{Name: "Line chat", Type: "linechat", Mode: bridge.Puppet, Session: (*session)(nil)}
}

// Login implements bridge.Network: one connection per XMPP user, named
// after the user's JID.
func (n *Network) Login(ctx context.Context, acct bridge.Account, ev bridge.Events) (bridge.Session, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", n.Addr)
	if err != nil {
		return nil, fmt.Errorf("line chat: %w", bridge.ErrUnavailable)
	}
	if _, err := fmt.Fprintf(conn, "USER %s\n", strings.ReplaceAll(acct.JID, " ", "_")); err != nil {
		conn.Close()
		return nil, err
	}
	s := &session{conn: conn, ev: ev}
	go s.read()
	return s, nil
}

type session struct {
	conn net.Conn
	ev   bridge.Events
	mu   sync.Mutex // one line at a time
}

// SendMessage implements bridge.Session.
func (s *session) SendMessage(ctx context.Context, to bridge.UserID, m bridge.Message) (bridge.MessageID, error) {
	if strings.ContainsAny(string(to), " \n") {
		return "", fmt.Errorf("%q: %w", to, bridge.ErrNoSuchUser)
	}
	body := strings.ReplaceAll(m.Body, "\n", " ")
	s.mu.Lock()
	defer s.mu.Unlock()
	// The bridge gives the XMPP id as m.ID: the server drops a message it
	// had if a crash of the bridge made it send the message again.
	_, err := fmt.Fprintf(s.conn, "MSG %s %s %s\n", to, m.ID, body)
	return m.ID, err
}

// Logout implements bridge.Session.
func (s *session) Logout(ctx context.Context) error { return s.conn.Close() }

// read reports what the server sends until the connection ends.
func (s *session) read() {
	sc := bufio.NewScanner(s.conn)
	for sc.Scan() {
		verb, rest, _ := strings.Cut(sc.Text(), " ")
		who, text, _ := strings.Cut(rest, " ")
		switch verb {
		case "MSG":
			id, body, _ := strings.Cut(text, " ")
			s.ev.Message(bridge.UserID(who), bridge.Message{ID: bridge.MessageID(id), Body: body})
			s.mu.Lock()
			fmt.Fprintf(s.conn, "ACK %s\n", id) // Message returned: the bridge has it safe
			s.mu.Unlock()
		case "ERR":
			// The server tells why a message went nowhere; users read it
			// as a notice from that address.
			s.ev.Message(bridge.UserID(who), bridge.Message{Body: "(not delivered: " + text + ")"})
		}
	}
	s.ev.Disconnected(sc.Err())
}
