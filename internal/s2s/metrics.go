package s2s

// Metrics receives the federation edge's events, for monitoring.
type Metrics interface {
	// S2SStreamUp and S2SStreamDown bracket a stream: an incoming one from
	// its connection, an outgoing one from its authentication.
	S2SStreamUp(incoming bool)
	S2SStreamDown(incoming bool)
	// S2SAuth reports an authentication's outcome; method is
	// MethodDialback or MethodSASLExternal.
	S2SAuth(method string, incoming, ok bool)
	// LimitHit reports a limit crossed on edge ("s2s").
	LimitHit(edge, limit string)
}

// noMetrics is the Metrics of a service given none.
type noMetrics struct{}

func (noMetrics) S2SStreamUp(bool)           {}
func (noMetrics) S2SStreamDown(bool)         {}
func (noMetrics) S2SAuth(string, bool, bool) {}
func (noMetrics) LimitHit(string, string)    {}
