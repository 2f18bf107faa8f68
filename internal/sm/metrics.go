package sm

// Metrics receives the session manager's events, for monitoring. StanzaOut
// and StanzaIn are called for every stanza and must be cheap.
type Metrics interface {
	// StanzaOut reports a stanza a user of the domain sent; kind is its
	// element name.
	StanzaOut(kind string)
	// StanzaIn reports a stanza addressed to the domain or its users.
	StanzaIn(kind string)
	// OfflineStored reports a message stored for an offline user.
	OfflineStored()
	// ArchiveWritten reports n archive entries written.
	ArchiveWritten(n int)
}

// noMetrics is the Metrics of a session manager given none.
type noMetrics struct{}

func (noMetrics) StanzaOut(string)   {}
func (noMetrics) StanzaIn(string)    {}
func (noMetrics) OfflineStored()     {}
func (noMetrics) ArchiveWritten(int) {}
