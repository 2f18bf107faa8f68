package c2s

import "context"

// redirectKey carries the connection being authenticated in the context
// its credential lookups get.
type redirectKey struct{}

// SeeOtherHost is called by a credential store that finds, while a client
// authenticates, that the user is served elsewhere (a gateway asking the
// service that owns the domain): the authentication then does not fail,
// the server ends the client's stream with the see-other-host stream
// error (RFC 6120 §4.9.3.19) carrying host instead. It reports whether ctx
// is that of a client's authentication.
func SeeOtherHost(ctx context.Context, host string) bool {
	c, _ := ctx.Value(redirectKey{}).(*conn)
	if c == nil || host == "" {
		return false
	}
	c.redirect = host
	return true
}
