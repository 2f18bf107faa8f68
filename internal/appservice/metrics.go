package appservice

// Metrics receives the figures of the senders, each labelled with the
// service's name.
type Metrics interface {
	// AppServiceBacklog reports how many events wait for the service,
	// those of its open transaction included.
	AppServiceBacklog(service string, depth int)
	// AppServiceTxn reports an attempt to send a transaction: ok when the
	// service acknowledged it.
	AppServiceTxn(service string, ok bool)
	// AppServiceDelivered reports n events the service acknowledged.
	AppServiceDelivered(service string, n int)
	// AppServiceDropped reports n events dropped unsent, the oldest
	// beyond the service's MaxBacklog.
	AppServiceDropped(service string, n int)
}

// noMetrics is the Metrics of a sender given none.
type noMetrics struct{}

func (noMetrics) AppServiceBacklog(string, int)   {}
func (noMetrics) AppServiceTxn(string, bool)      {}
func (noMetrics) AppServiceDelivered(string, int) {}
func (noMetrics) AppServiceDropped(string, int)   {}
