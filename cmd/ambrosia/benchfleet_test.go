package main

import (
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/loadtest"
)

// TestRecoverFigures: when the killed instance's users were served again,
// from the messages and logins of the kill's step.
func TestRecoverFigures(t *testing.T) {
	k := time.Unix(1000, 0)
	at := func(s float64) int64 { return k.Add(time.Duration(s * float64(time.Second))).UnixNano() }
	slow := 250 * time.Millisecond
	tests := []struct {
		name                    string
		sent                    []loadtest.Sent
		arrivals                []loadtest.Arrival
		logins                  []loadtest.LoginProbe
		disrupted, lost, failed int
		msgs, logs, again       float64
	}{
		{name: "nothing disrupted",
			sent:     []loadtest.Sent{{Sender: 1, Seq: 1, At: at(0.1)}},
			arrivals: []loadtest.Arrival{{Sender: 1, Seq: 1, SentAt: at(0.1), At: at(0.11)}},
			logins:   []loadtest.LoginProbe{{At: at(0.2), OK: true}}},
		{name: "late messages and failed logins",
			sent: []loadtest.Sent{{Sender: 1, Seq: 1, At: at(-1)}, {Sender: 1, Seq: 2, At: at(0.1)}, {Sender: 2, Seq: 1, At: at(0.5)}, {Sender: 3, Seq: 1, At: at(1.5)}},
			arrivals: []loadtest.Arrival{{Sender: 1, Seq: 1, SentAt: at(-1), At: at(2)}, {Sender: 1, Seq: 2, SentAt: at(0.1), At: at(1.2)},
				{Sender: 2, Seq: 1, SentAt: at(0.5), At: at(1.3)}, {Sender: 3, Seq: 1, SentAt: at(1.5), At: at(1.51)}},
			logins:    []loadtest.LoginProbe{{At: at(0.1), OK: true}, {At: at(0.2), Err: "x"}, {At: at(0.9), Err: "y"}, {At: at(1.4), OK: true}},
			disrupted: 2, failed: 2, msgs: 1.3, logs: 1.4, again: 1.4},
		{name: "a lost message",
			sent:      []loadtest.Sent{{Sender: 1, Seq: 1, At: at(0.7)}},
			disrupted: 1, lost: 1, msgs: 0.7, again: 0.7},
		{name: "logins never back",
			logins: []loadtest.LoginProbe{{At: at(0.2), Err: "x"}},
			failed: 1, logs: -1, again: -1},
	}
	near := func(a, b float64) bool { return a-b < 1e-6 && b-a < 1e-6 }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fo := &benchFailover{}
			reports := []loadtest.StepReport{{Sent: tt.sent}, {Arrivals: tt.arrivals}}
			recoverFigures(fo, k, slow, reports, tt.logins)
			if fo.Disrupted != tt.disrupted || fo.Lost != tt.lost || fo.LoginsFailed != tt.failed ||
				!near(fo.MessagesServedAfterS, tt.msgs) || !near(fo.LoginsServedAfterS, tt.logs) || !near(fo.ServedAgainS, tt.again) {
				t.Fatalf("got %+v", fo)
			}
		})
	}
}
