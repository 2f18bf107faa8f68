// Package metrics exposes Ambrosia's operational figures in the Prometheus
// format. The protocol packages do not import it: each declares the few
// callbacks it makes (c2s.Metrics, sm.Metrics, …), and *Metrics implements
// all of them, so that the command wires one value everywhere.
//
// Counters on a stanza's path are resolved to their label children once,
// here, so that counting a stanza is one atomic add.
package metrics

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every metric name.
const namespace = "ambrosia"

// Stanza kinds, the index of the per-kind counters.
const (
	kindMessage = iota
	kindPresence
	kindIQ
	numKinds
)

var kindNames = [numKinds]string{"message", "presence", "iq"}

// kindIndex maps a stanza's element name to its counter; -1 for none.
func kindIndex(kind string) int {
	switch kind {
	case "message":
		return kindMessage
	case "presence":
		return kindPresence
	case "iq":
		return kindIQ
	}
	return -1
}

// Metrics holds Ambrosia's metrics in its own registry. A nil *Metrics
// records nothing, so that callers need not check.
type Metrics struct {
	reg *prometheus.Registry

	clientConns   prometheus.Gauge
	sessions      prometheus.Gauge
	clientAuths   *prometheus.CounterVec
	limits        *prometheus.CounterVec
	clientStanzas [numKinds]prometheus.Counter
	routedOut     [numKinds]prometheus.Counter
	routedIn      [numKinds]prometheus.Counter
	offline       prometheus.Counter
	archived      prometheus.Counter
	s2sIn         prometheus.Gauge
	s2sOut        prometheus.Gauge
	s2sAuths      *prometheus.CounterVec
	components    prometheus.Gauge
	links         prometheus.Gauge

	// Application services, labelled with the service's name: the
	// operator declares the services, so the label values are few.
	asBacklog   *prometheus.GaugeVec
	asTxns      *prometheus.CounterVec
	asDelivered *prometheus.CounterVec
	asDropped   *prometheus.CounterVec
}

// New returns metrics registered in a new registry together with the Go
// runtime and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg}
	gauge := func(subsystem, name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: subsystem, Name: name, Help: help})
		reg.MustRegister(g)
		return g
	}
	counter := func(subsystem, name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: subsystem, Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	counterVec := func(subsystem, name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: subsystem, Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	m.clientConns = gauge("c2s", "connections", "Open client connections, bound or not.")
	m.sessions = gauge("c2s", "sessions", "Bound client sessions, including those waiting for a stream management resumption.")
	m.clientAuths = counterVec("c2s", "authentications_total", "Client authentication attempts by SASL mechanism and outcome (success or failure).", "mechanism", "outcome")
	m.limits = counterVec("", "limit_hits_total", "Connections, logins and streams refused or ended by a limit, by edge (c2s, s2s, component) and limit (the text the peer was sent).", "edge", "limit")
	stanzas := counterVec("c2s", "stanzas_received_total", "Stanzas received from bound clients, by kind.", "kind")
	routed := counterVec("sm", "stanzas_routed_total", "Stanzas handled by the session managers, by kind and direction: out, sent by the domain's users; in, addressed to the domain or its users. A message between two local users counts once each way.", "kind", "direction")
	for i, k := range kindNames {
		m.clientStanzas[i] = stanzas.WithLabelValues(k)
		m.routedOut[i] = routed.WithLabelValues(k, "out")
		m.routedIn[i] = routed.WithLabelValues(k, "in")
	}
	m.offline = counter("sm", "offline_messages_stored_total", "Messages stored for offline users (XEP-0160).")
	m.archived = counter("sm", "archive_entries_written_total", "Message archive entries written (XEP-0313).")
	m.s2sIn = gauge("s2s", "incoming_streams", "Open incoming server-to-server streams.")
	m.s2sOut = gauge("s2s", "outgoing_streams", "Established outgoing server-to-server streams.")
	m.s2sAuths = counterVec("s2s", "authentications_total", "Server-to-server authentications by method (dialback or sasl-external), direction (in or out) and outcome (success or failure).", "method", "direction", "outcome")
	m.components = gauge("component", "connected", "External components (XEP-0114) connected and authenticated.")
	m.links = gauge("link", "connected", "Established service-protocol links between gateways and services.")
	m.asBacklog = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "appservice", Name: "backlog",
		Help: "Events waiting for each application service, those of the transaction in flight included."}, []string{"service"})
	reg.MustRegister(m.asBacklog)
	m.asTxns = counterVec("appservice", "transactions_total", "Attempts to send a transaction to each application service, by outcome: success (acknowledged) or failure (to be sent again).", "service", "outcome")
	m.asDelivered = counterVec("appservice", "events_delivered_total", "Events acknowledged by each application service.", "service")
	m.asDropped = counterVec("appservice", "events_dropped_total", "Events dropped unsent, the oldest beyond an application service's max_backlog.", "service")
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry holding the metrics, for a caller that
// adds its own collectors or gathers them.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func outcome(ok bool) string {
	if ok {
		return "success"
	}
	return "failure"
}

// clientMechanisms are the mechanism labels kept as they are; a client may
// name anything, and each name would otherwise become a time series.
var clientMechanisms = map[string]bool{
	"PLAIN": true, "EXTERNAL": true,
	"SCRAM-SHA-1": true, "SCRAM-SHA-1-PLUS": true,
	"SCRAM-SHA-256": true, "SCRAM-SHA-256-PLUS": true,
	"SCRAM-SHA-512": true, "SCRAM-SHA-512-PLUS": true,
	"HT-SHA-256-NONE": true, "HT-SHA-256-ENDP": true, "HT-SHA-256-EXPR": true,
}

// ClientConnected counts a new client connection (c2s.Metrics).
func (m *Metrics) ClientConnected() {
	if m != nil {
		m.clientConns.Inc()
	}
}

// ClientDisconnected counts a client connection's end (c2s.Metrics).
func (m *Metrics) ClientDisconnected() {
	if m != nil {
		m.clientConns.Dec()
	}
}

// SessionBound counts a newly bound client session (c2s.Metrics).
func (m *Metrics) SessionBound() {
	if m != nil {
		m.sessions.Inc()
	}
}

// SessionEnded counts a client session's end (c2s.Metrics).
func (m *Metrics) SessionEnded() {
	if m != nil {
		m.sessions.Dec()
	}
}

// LimitHit counts a limit crossed (c2s.Metrics and the other edges').
func (m *Metrics) LimitHit(edge, limit string) {
	if m == nil {
		return
	}
	m.limits.WithLabelValues(edge, limit).Inc()
}

// ClientAuth counts a client authentication's outcome (c2s.Metrics).
// Mechanisms Ambrosia does not know are counted as "other".
func (m *Metrics) ClientAuth(mechanism string, ok bool) {
	if m == nil {
		return
	}
	mechanism = strings.ToUpper(mechanism)
	if !clientMechanisms[mechanism] {
		mechanism = "other"
	}
	m.clientAuths.WithLabelValues(mechanism, outcome(ok)).Inc()
}

// ClientStanza counts a stanza received from a bound client; kind is its
// element name (c2s.Metrics).
func (m *Metrics) ClientStanza(kind string) {
	if m == nil {
		return
	}
	if i := kindIndex(kind); i >= 0 {
		m.clientStanzas[i].Inc()
	}
}

// StanzaOut counts a stanza a user of a served domain sent (sm.Metrics).
func (m *Metrics) StanzaOut(kind string) {
	if m == nil {
		return
	}
	if i := kindIndex(kind); i >= 0 {
		m.routedOut[i].Inc()
	}
}

// StanzaIn counts a stanza addressed to a served domain or its users
// (sm.Metrics).
func (m *Metrics) StanzaIn(kind string) {
	if m == nil {
		return
	}
	if i := kindIndex(kind); i >= 0 {
		m.routedIn[i].Inc()
	}
}

// OfflineStored counts a message stored for an offline user (sm.Metrics).
func (m *Metrics) OfflineStored() {
	if m != nil {
		m.offline.Inc()
	}
}

// ArchiveWritten counts n archive entries written (sm.Metrics).
func (m *Metrics) ArchiveWritten(n int) {
	if m != nil && n > 0 {
		m.archived.Add(float64(n))
	}
}

func (m *Metrics) s2sGauge(incoming bool) prometheus.Gauge {
	if incoming {
		return m.s2sIn
	}
	return m.s2sOut
}

// S2SStreamUp counts a server-to-server stream that opened (s2s.Metrics).
func (m *Metrics) S2SStreamUp(incoming bool) {
	if m != nil {
		m.s2sGauge(incoming).Inc()
	}
}

// S2SStreamDown counts a server-to-server stream's end (s2s.Metrics).
func (m *Metrics) S2SStreamDown(incoming bool) {
	if m != nil {
		m.s2sGauge(incoming).Dec()
	}
}

// S2SAuth counts a server-to-server authentication's outcome; method is
// "dialback" or "sasl-external" (s2s.Metrics).
func (m *Metrics) S2SAuth(method string, incoming, ok bool) {
	if m == nil {
		return
	}
	dir := "out"
	if incoming {
		dir = "in"
	}
	switch method {
	case "dialback", "sasl-external":
	default:
		method = "other"
	}
	m.s2sAuths.WithLabelValues(method, dir, outcome(ok)).Inc()
}

// ComponentUp counts an external component that authenticated
// (component.Metrics).
func (m *Metrics) ComponentUp() {
	if m != nil {
		m.components.Inc()
	}
}

// ComponentDown counts an authenticated component's disconnection
// (component.Metrics).
func (m *Metrics) ComponentDown() {
	if m != nil {
		m.components.Dec()
	}
}

// LinkUp counts an established service-protocol link (link.Metrics).
func (m *Metrics) LinkUp() {
	if m != nil {
		m.links.Inc()
	}
}

// LinkDown counts a service-protocol link's end (link.Metrics).
func (m *Metrics) LinkDown() {
	if m != nil {
		m.links.Dec()
	}
}

// AppServiceBacklog reports how many events wait for an application
// service (appservice.Metrics).
func (m *Metrics) AppServiceBacklog(service string, depth int) {
	if m != nil {
		m.asBacklog.WithLabelValues(service).Set(float64(depth))
	}
}

// AppServiceTxn counts an attempt to send a transaction to an application
// service (appservice.Metrics).
func (m *Metrics) AppServiceTxn(service string, ok bool) {
	if m != nil {
		m.asTxns.WithLabelValues(service, outcome(ok)).Inc()
	}
}

// AppServiceDelivered counts n events an application service
// acknowledged (appservice.Metrics).
func (m *Metrics) AppServiceDelivered(service string, n int) {
	if m != nil && n > 0 {
		m.asDelivered.WithLabelValues(service).Add(float64(n))
	}
}

// AppServiceDropped counts n events dropped beyond an application
// service's backlog bound (appservice.Metrics).
func (m *Metrics) AppServiceDropped(service string, n int) {
	if m != nil && n > 0 {
		m.asDropped.WithLabelValues(service).Add(float64(n))
	}
}
