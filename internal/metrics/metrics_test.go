package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ambrosia-xmpp/ambrosia/internal/appservice"
	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/component"
	"github.com/ambrosia-xmpp/ambrosia/internal/link"
	"github.com/ambrosia-xmpp/ambrosia/internal/s2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
)

// *Metrics is what the command hands every package.
var (
	_ c2s.Metrics        = (*Metrics)(nil)
	_ sm.Metrics         = (*Metrics)(nil)
	_ s2s.Metrics        = (*Metrics)(nil)
	_ component.Metrics  = (*Metrics)(nil)
	_ link.Metrics       = (*Metrics)(nil)
	_ appservice.Metrics = (*Metrics)(nil)
)

func TestValuesAfterEvents(t *testing.T) {
	cases := []struct {
		name   string
		events func(m *Metrics)
		metric string // the family compared
		want   string // its expected exposition, without HELP and TYPE
	}{
		{
			name: "connections and sessions",
			events: func(m *Metrics) {
				m.ClientConnected()
				m.ClientConnected()
				m.SessionBound()
				m.ClientConnected()
				m.ClientDisconnected()
			},
			metric: "ambrosia_c2s_connections",
			want:   "ambrosia_c2s_connections 2\n",
		},
		{
			name: "sessions end",
			events: func(m *Metrics) {
				m.SessionBound()
				m.SessionBound()
				m.SessionEnded()
			},
			metric: "ambrosia_c2s_sessions",
			want:   "ambrosia_c2s_sessions 1\n",
		},
		{
			name: "authentications by mechanism and outcome",
			events: func(m *Metrics) {
				m.ClientAuth("SCRAM-SHA-256", true)
				m.ClientAuth("scram-sha-256", true)
				m.ClientAuth("PLAIN", false)
				m.ClientAuth("X-MADE-UP", false)
				m.ClientAuth("", false)
			},
			metric: "ambrosia_c2s_authentications_total",
			want: `ambrosia_c2s_authentications_total{mechanism="PLAIN",outcome="failure"} 1
ambrosia_c2s_authentications_total{mechanism="SCRAM-SHA-256",outcome="success"} 2
ambrosia_c2s_authentications_total{mechanism="other",outcome="failure"} 2
`,
		},
		{
			name: "client stanzas by kind, unknown kinds ignored",
			events: func(m *Metrics) {
				m.ClientStanza("message")
				m.ClientStanza("message")
				m.ClientStanza("iq")
				m.ClientStanza("r")
			},
			metric: "ambrosia_c2s_stanzas_received_total",
			want: `ambrosia_c2s_stanzas_received_total{kind="iq"} 1
ambrosia_c2s_stanzas_received_total{kind="message"} 2
ambrosia_c2s_stanzas_received_total{kind="presence"} 0
`,
		},
		{
			name: "routed stanzas by kind and direction",
			events: func(m *Metrics) {
				m.StanzaOut("message")
				m.StanzaIn("message")
				m.StanzaIn("presence")
				m.StanzaIn("presence")
				m.StanzaOut("iq")
			},
			metric: "ambrosia_sm_stanzas_routed_total",
			want: `ambrosia_sm_stanzas_routed_total{direction="in",kind="iq"} 0
ambrosia_sm_stanzas_routed_total{direction="in",kind="message"} 1
ambrosia_sm_stanzas_routed_total{direction="in",kind="presence"} 2
ambrosia_sm_stanzas_routed_total{direction="out",kind="iq"} 1
ambrosia_sm_stanzas_routed_total{direction="out",kind="message"} 1
ambrosia_sm_stanzas_routed_total{direction="out",kind="presence"} 0
`,
		},
		{
			name:   "offline messages",
			events: func(m *Metrics) { m.OfflineStored(); m.OfflineStored() },
			metric: "ambrosia_sm_offline_messages_stored_total",
			want:   "ambrosia_sm_offline_messages_stored_total 2\n",
		},
		{
			name:   "archive entries, in batches",
			events: func(m *Metrics) { m.ArchiveWritten(64); m.ArchiveWritten(3); m.ArchiveWritten(0) },
			metric: "ambrosia_sm_archive_entries_written_total",
			want:   "ambrosia_sm_archive_entries_written_total 67\n",
		},
		{
			name: "incoming s2s streams",
			events: func(m *Metrics) {
				m.S2SStreamUp(true)
				m.S2SStreamUp(true)
				m.S2SStreamUp(false)
				m.S2SStreamDown(true)
			},
			metric: "ambrosia_s2s_incoming_streams",
			want:   "ambrosia_s2s_incoming_streams 1\n",
		},
		{
			name: "outgoing s2s streams",
			events: func(m *Metrics) {
				m.S2SStreamUp(false)
				m.S2SStreamUp(false)
				m.S2SStreamDown(false)
				m.S2SStreamDown(false)
				m.S2SStreamUp(false)
			},
			metric: "ambrosia_s2s_outgoing_streams",
			want:   "ambrosia_s2s_outgoing_streams 1\n",
		},
		{
			name: "s2s authentications",
			events: func(m *Metrics) {
				m.S2SAuth("dialback", true, true)
				m.S2SAuth("sasl-external", false, true)
				m.S2SAuth("dialback", false, false)
				m.S2SAuth("made-up", true, false)
			},
			metric: "ambrosia_s2s_authentications_total",
			want: `ambrosia_s2s_authentications_total{direction="in",method="dialback",outcome="success"} 1
ambrosia_s2s_authentications_total{direction="in",method="other",outcome="failure"} 1
ambrosia_s2s_authentications_total{direction="out",method="dialback",outcome="failure"} 1
ambrosia_s2s_authentications_total{direction="out",method="sasl-external",outcome="success"} 1
`,
		},
		{
			name:   "components",
			events: func(m *Metrics) { m.ComponentUp(); m.ComponentUp(); m.ComponentDown() },
			metric: "ambrosia_component_connected",
			want:   "ambrosia_component_connected 1\n",
		},
		{
			name:   "service links",
			events: func(m *Metrics) { m.LinkUp(); m.LinkUp(); m.LinkUp(); m.LinkDown() },
			metric: "ambrosia_link_connected",
			want:   "ambrosia_link_connected 2\n",
		},
		{
			name: "application service backlogs",
			events: func(m *Metrics) {
				m.AppServiceBacklog("directory", 5)
				m.AppServiceBacklog("bridge", 7)
				m.AppServiceBacklog("directory", 2)
			},
			metric: "ambrosia_appservice_backlog",
			want: `ambrosia_appservice_backlog{service="bridge"} 7
ambrosia_appservice_backlog{service="directory"} 2
`,
		},
		{
			name: "application service transactions",
			events: func(m *Metrics) {
				m.AppServiceTxn("directory", false)
				m.AppServiceTxn("directory", false)
				m.AppServiceTxn("directory", true)
			},
			metric: "ambrosia_appservice_transactions_total",
			want: `ambrosia_appservice_transactions_total{outcome="failure",service="directory"} 2
ambrosia_appservice_transactions_total{outcome="success",service="directory"} 1
`,
		},
		{
			name:   "application service events delivered",
			events: func(m *Metrics) { m.AppServiceDelivered("directory", 100); m.AppServiceDelivered("directory", 3) },
			metric: "ambrosia_appservice_events_delivered_total",
			want:   "ambrosia_appservice_events_delivered_total{service=\"directory\"} 103\n",
		},
		{
			name:   "application service events dropped",
			events: func(m *Metrics) { m.AppServiceDropped("directory", 10); m.AppServiceDropped("directory", 0) },
			metric: "ambrosia_appservice_events_dropped_total",
			want:   "ambrosia_appservice_events_dropped_total{service=\"directory\"} 10\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := New()
			tc.events(m)
			if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(expo(t, m, tc.metric, tc.want)), tc.metric); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// expo prefixes want with the HELP and TYPE lines of metric, which
// GatherAndCompare insists on; the tests state only the values.
func expo(t *testing.T, m *Metrics, metric, want string) string {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == metric {
			return "# HELP " + metric + " " + f.GetHelp() + "\n# TYPE " + metric + " " + strings.ToLower(f.GetType().String()) + "\n" + want
		}
	}
	t.Fatalf("no metric %s", metric)
	return ""
}

// A nil *Metrics is what packages get when metrics are off: every call is
// a no-op rather than a panic.
func TestNilRecordsNothing(t *testing.T) {
	var m *Metrics
	m.ClientConnected()
	m.ClientDisconnected()
	m.SessionBound()
	m.SessionEnded()
	m.ClientAuth("PLAIN", true)
	m.ClientStanza("message")
	m.StanzaOut("message")
	m.StanzaIn("iq")
	m.OfflineStored()
	m.ArchiveWritten(3)
	m.S2SStreamUp(true)
	m.S2SStreamDown(false)
	m.S2SAuth("dialback", true, true)
	m.ComponentUp()
	m.ComponentDown()
	m.LinkUp()
	m.LinkDown()
	m.AppServiceBacklog("directory", 1)
	m.AppServiceTxn("directory", true)
	m.AppServiceDelivered("directory", 1)
	m.AppServiceDropped("directory", 1)
}

func TestHandlerServesRuntimeAndOwnMetrics(t *testing.T) {
	m := New()
	m.ClientConnected()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ambrosia_c2s_connections 1", "go_goroutines ", "go_memstats_heap_alloc_bytes ", "process_open_fds "} {
		if !strings.Contains(string(b), want) {
			t.Errorf("no %q in /metrics", want)
		}
	}
}

// Counting a stanza is the one call on the hot path.
func BenchmarkStanzaIn(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.StanzaIn("message")
	}
}
