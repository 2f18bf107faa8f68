// Package bot runs a program as an ordinary account on any XMPP server:
// a "system user" that logs in as bot@example.org does, receives
// messages, presence and requests as typed events, and answers them.
package bot
