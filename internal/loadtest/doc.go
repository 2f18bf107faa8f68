// Package loadtest is the load client behind `ambrosia bench`, used to
// measure Ambrosia itself: it creates load accounts directly in the store,
// opens many client connections that negotiate like a real client (stream,
// optional STARTTLS, SASL SCRAM-SHA-1, resource binding, presence) and
// reports memory per idle connection, login rates, message latency and,
// in multi-user chat rooms, join times, deliveries per second, loss and
// the server's CPU and memory per occupant (muc.go).
//
// The client shares the machine with the server it measures, so it is
// written to cost as little as possible: connections are driven by plain
// goroutines reading into a private buffer (no bufio), stanzas are built
// from pre-rendered byte slices, message pacing runs on a few goroutines
// that write directly to the sockets, and the SCRAM salted password is
// derived once per password, salt and iteration count and shared by every
// connection, as a real client caches it for its account.
//
// It speaks plain XMPP, so it measures any server (Ambrosia, Prosody,
// ejabberd…). The command that drives it loads a server that is not on
// this machine only when the operator says the server is theirs: it is a
// benchmark, not a stress tool for other people's servers.
package loadtest
