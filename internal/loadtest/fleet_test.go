package loadtest

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

func TestHistogramDataMerge(t *testing.T) {
	var a, b, all Histogram
	for i := range 1000 {
		d := time.Duration(i*37%5000) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Add(a.Data())
	m.Merge(&b)
	for _, q := range []float64{0.5, 0.9, 0.99, 1} {
		if got, want := m.Percentile(q), all.Percentile(q); got != want {
			t.Errorf("p%v: merged %v, want %v", q*100, got, want)
		}
	}
	if m.Count() != all.Count() || m.Max() != all.Max() {
		t.Errorf("merged n=%d max=%v, want n=%d max=%v", m.Count(), m.Max(), all.Count(), all.Max())
	}
}

func TestParseFleetID(t *testing.T) {
	tests := []struct {
		id                string
		step, sender, seq int
		ts                int64
		ok                bool
	}{
		{"f2.1234.7.1700000000000000000", 2, 1234, 7, 1700000000000000000, true},
		{"f0.0.1.5", 0, 0, 1, 5, true},
		{"s2-123", 0, 0, 0, 0, false},
		{"f2.1.2", 0, 0, 0, 0, false},
		{"f99.1.2.3", 0, 0, 0, 0, false},
		{"f1.-1.2.3", 0, 0, 0, 0, false},
		{"f1.x.2.3", 0, 0, 0, 0, false},
	}
	for _, tt := range tests {
		step, sender, seq, ts, ok := parseFleetID(tt.id)
		if ok != tt.ok || (ok && (step != tt.step || sender != tt.sender || seq != tt.seq || ts != tt.ts)) {
			t.Errorf("parseFleetID(%q) = %d %d %d %d %v", tt.id, step, sender, seq, ts, ok)
		}
	}
}

// TestPeerOf: an addressee is always a session of the fleet on another
// gateway, and every other gateway gets some.
func TestPeerOf(t *testing.T) {
	for _, tt := range []struct{ gateways, total int }{{2, 10}, {3, 2000}, {10, 20011}, {3, 4}} {
		gws := make([]string, tt.gateways)
		w, err := NewFleetWorker(FleetConfig{Gateways: gws, Total: tt.total, Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range min(tt.total, 200) {
			hit := map[int]bool{}
			for range 200 {
				j := w.peerOf(rng, i)
				if j < 0 || j >= tt.total || j%tt.gateways == i%tt.gateways {
					t.Fatalf("%d gateways, %d sessions: peer of %d is %d", tt.gateways, tt.total, i, j)
				}
				hit[j%tt.gateways] = true
			}
			if len(hit) != tt.gateways-1 {
				t.Fatalf("%d gateways: session %d reached gateways %v", tt.gateways, i, hit)
			}
		}
	}
}

func TestSampleProcs(t *testing.T) {
	s, err := SampleProcs([]int{os.Getpid()})
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if len(s) != 1 || s[0].Procs < 1 || s[0].PSSKiB <= 0 || s[0].Name == "" {
		t.Fatalf("SampleProcs(self) = %+v", s)
	}
}

func TestKeepaliveDue(t *testing.T) {
	for _, tc := range []struct {
		n       int
		elapsed time.Duration
		want    int64
	}{
		{15000, 0, 0},
		{15000, 100 * time.Millisecond, 25},
		{15000, 30 * time.Second, 7500},
		{15000, time.Minute, 15000},
		// A tick that comes late owes the spaces of the time it missed.
		{15000, 90 * time.Second, 22500},
		{1, 59 * time.Second, 0},
		{1, time.Minute, 1},
	} {
		if got := keepaliveDue(tc.n, tc.elapsed, time.Minute); got != tc.want {
			t.Errorf("keepaliveDue(%d, %v) = %d, want %d", tc.n, tc.elapsed, got, tc.want)
		}
	}
}

// TestFleetReaderAnswersPings: a session's reader answers the server's
// idle ping, as a client does; a server ends a session whose ping goes
// unanswered.
func TestFleetReaderAnswersPings(t *testing.T) {
	w := &FleetWorker{}
	server, done := readPipe(w)
	defer server.Close()
	go func() {
		_, _ = server.Write([]byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost'>" +
			"<iq type='get' id='idle-1' from='localhost' to='load0@localhost/bench'><ping xmlns='urn:xmpp:ping'/></iq>"))
	}()
	_ = server.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	n, err := server.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	got := string(buf[:n])
	for _, want := range []string{"type='result'", "id='idle-1'", "to='localhost'"} {
		if !strings.Contains(got, want) {
			t.Errorf("answer %q lacks %s", got, want)
		}
	}
	if strings.Contains(got, "from=") {
		t.Errorf("answer %q names a sender", got)
	}
	server.Close()
	<-done
}

// TestFleetMessageBeforeItsStep: a message of a step that arrives before
// the step's command reached this process is counted, not dropped (the
// parent starts the load processes' steps one after another).
func TestFleetMessageBeforeItsStep(t *testing.T) {
	w := &FleetWorker{}
	server, done := readPipe(w)
	defer server.Close()
	id := "f0.5.1." + strconv.FormatInt(time.Now().UnixNano(), 10)
	if _, err := server.Write([]byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost'>" +
		"<message type='chat' id='" + id + "'><body>x</body></message></stream:stream>")); err != nil {
		t.Fatal(err)
	}
	<-done
	if d, _ := w.Delivered(0); d != 1 {
		t.Errorf("%d messages of step 1 counted, want 1", d)
	}
	if n := w.unmatched.Load(); n != 0 {
		t.Errorf("%d messages unmatched", n)
	}
}

// readPipe runs w's reader on one end of a pipe, past the stream header
// (which the login reads), and returns the server's end and the reader's
// outcome.
func readPipe(w *FleetWorker) (net.Conn, <-chan CloseOutcome) {
	client, server := net.Pipe()
	done := make(chan CloseOutcome, 1)
	go func() {
		cn := &Conn{raw: client, nc: client, p: xmlstream.NewParser(xmlstream.DefaultLimits())}
		if _, err := cn.event(); err != nil {
			done <- closeOutcome(err)
			return
		}
		done <- w.read(cn)
	}()
	return server, done
}
