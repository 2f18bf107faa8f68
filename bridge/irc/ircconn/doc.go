// Package ircconn is an IRC client connection, written from RFC 1459,
// RFC 2812 and the modern IRC documents (modern.ircdocs.horse, IRCv3):
//
//   - Dial connects (plain TCP, or TLS) and registers: CAP LS 302 with the
//     capabilities asked for, PASS, NICK with another nick when it is
//     taken ('_' appended) or too long, USER, then the welcome, ISUPPORT
//     and the end of the message of the day;
//   - Serve reads, in one goroutine per connection, answering PINGs,
//     pinging a silent server and leaving it when it stays silent, and
//     passes each Message to a handler;
//   - Send and the text helpers (Privmsg, Notice, Action) write through a
//     token bucket (flood control), cutting text to the 512-byte line
//     limit as the server relays it;
//   - Parse reads a line tolerantly, IRCv3 message tags included.
//
// It knows nothing of channels or other people: that is its user's part.
package ircconn
