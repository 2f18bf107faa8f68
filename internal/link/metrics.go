package link

// Metrics receives the service protocol's events, for monitoring.
type Metrics interface {
	// LinkUp and LinkDown bracket an established link between a gateway
	// and a service, on whichever end reports them.
	LinkUp()
	LinkDown()
}

// noMetrics is the Metrics of an end given none.
type noMetrics struct{}

func (noMetrics) LinkUp()   {}
func (noMetrics) LinkDown() {}

// orNone returns m, or a Metrics that records nothing if m is nil.
func orNone(m Metrics) Metrics {
	if m == nil {
		return noMetrics{}
	}
	return m
}
