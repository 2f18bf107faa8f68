package c2s

// Metrics receives the client edge's events, for monitoring. The methods
// are called on the connections' goroutines and must not block;
// ClientStanza is called for every stanza a client sends.
type Metrics interface {
	// ClientConnected and ClientDisconnected bracket a client connection.
	ClientConnected()
	ClientDisconnected()
	// SessionBound and SessionEnded bracket a bound session, which may
	// outlive its connection while it waits for a resumption.
	SessionBound()
	SessionEnded()
	// ClientAuth reports an authentication's outcome; mechanism is what
	// the client asked for, unchecked.
	ClientAuth(mechanism string, ok bool)
	// ClientStanza reports a stanza from a bound client; kind is its
	// element name.
	ClientStanza(kind string)
	// LimitHit reports a limit crossed on edge ("c2s"); limit is the text
	// the peer was sent.
	LimitHit(edge, limit string)
}

// noMetrics is the Metrics of a server given none.
type noMetrics struct{}

func (noMetrics) ClientConnected()        {}
func (noMetrics) ClientDisconnected()     {}
func (noMetrics) SessionBound()           {}
func (noMetrics) SessionEnded()           {}
func (noMetrics) ClientAuth(string, bool) {}
func (noMetrics) ClientStanza(string)     {}
func (noMetrics) LimitHit(string, string) {}

// metrics returns the configured Metrics, or one that records nothing.
func (d *Deps) metrics() Metrics {
	if d.Metrics == nil {
		return noMetrics{}
	}
	return d.Metrics
}
