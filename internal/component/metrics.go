package component

// Metrics receives the component listener's events, for monitoring.
type Metrics interface {
	// ComponentUp and ComponentDown bracket a component's time connected
	// with its domain bound.
	ComponentUp()
	ComponentDown()
	// LimitHit reports a limit crossed on edge ("component").
	LimitHit(edge, limit string)
}

// noMetrics is the Metrics of a server given none.
type noMetrics struct{}

func (noMetrics) ComponentUp()            {}
func (noMetrics) ComponentDown()          {}
func (noMetrics) LimitHit(string, string) {}
