package loadtest

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/dataform"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// parseStanza parses one stanza of a client stream.
func parseStanza(t *testing.T, s string) *xmlstream.Element {
	t.Helper()
	el, err := xmlstream.ParseStanza([]byte(s), xmlstream.NSClient)
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return el
}

func TestChooseMaxUsers(t *testing.T) {
	list := func(cur string, opts ...string) *dataform.Form {
		f := dataform.Field{Var: fMaxUsers, Type: dataform.ListSingle, Values: []string{cur}}
		for _, o := range opts {
			f.Options = append(f.Options, dataform.Option{Value: o})
		}
		return &dataform.Form{Fields: []dataform.Field{{Var: "muc#roomconfig_roomname"}, f}}
	}
	for _, tc := range []struct {
		name      string
		form      *dataform.Form
		want      int
		value     string
		raise, ok bool
	}{
		{"no form", nil, 1000, "", false, true},
		{"no field (Prosody)", &dataform.Form{Fields: []dataform.Field{{Var: "muc#roomconfig_roomname"}}}, 1000, "", false, true},
		{"no limit (Ambrosia)", list("none", "none", "10", "1000"), 1000, "", false, true},
		{"enough already", list("1000", "200", "1000"), 1000, "", false, true},
		{"raise to the smallest option (ejabberd)", list("200", "5", "10", "200", "500", "1000", "2000"), 300, "500", true, true},
		{"raise to an exact option", list("200", "200", "1000", "5000"), 1000, "1000", true, true},
		{"raise to none", list("20", "20", "none"), 1000, "none", true, true},
		{"text field", &dataform.Form{Fields: []dataform.Field{{Var: fMaxUsers, Type: dataform.TextSingle, Values: []string{"30"}}}}, 1000, "1000", true, true},
		{"server limit too low", list("200", "100", "200"), 1000, "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, raise, err := chooseMaxUsers(tc.form, tc.want)
			if (err == nil) != tc.ok || v != tc.value || raise != tc.raise {
				t.Errorf("got %q %v %v, want %q %v ok=%v", v, raise, err, tc.value, tc.raise, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "raise the server's limit") {
				t.Errorf("error does not say what to do: %v", err)
			}
		})
	}
}

func TestSeatOf(t *testing.T) {
	self := `<presence from='bench0@conference.localhost/load1' to='load1@localhost/bench'>` +
		`<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='owner' role='moderator'/>` +
		`<status code='110'/><status code='201'/></x></presence>`
	const room = "bench0@conference.localhost"
	ev, ok := seatOf(parseStanza(t, self), room)
	if !ok || !ev.created || ev.err != nil {
		t.Errorf("creator's self-presence: %+v %v", ev, ok)
	}
	ev, ok = seatOf(parseStanza(t, strings.Replace(self, "<status code='201'/>", "", 1)), room)
	if !ok || ev.created || ev.err != nil {
		t.Errorf("self-presence: %+v %v", ev, ok)
	}
	other := `<presence from='bench0@conference.localhost/load2'><x xmlns='http://jabber.org/protocol/muc#user'>` +
		`<item affiliation='none' role='participant'/></x></presence>`
	if _, ok := seatOf(parseStanza(t, other), room); ok {
		t.Error("another occupant's presence seats us")
	}
	if _, ok := seatOf(parseStanza(t, strings.Replace(self, "<presence ", "<presence type='unavailable' ", 1)), room); ok {
		t.Error("our own exit seats us")
	}
	if _, ok := seatOf(parseStanza(t, `<presence from='load3@localhost/x'/>`), room); ok {
		t.Error("a plain presence seats us")
	}
	if _, ok := seatOf(parseStanza(t, strings.Replace(self, "bench0@", "bench1@", 1)), room); ok {
		t.Error("another room's self-presence seats us")
	}
	if _, ok := seatOf(parseStanza(t, `<presence type='error' from='load3@localhost'><error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`), room); ok {
		t.Error("a contact's error presence fails the join")
	}
	ev, ok = seatOf(parseStanza(t, `<presence type='error' from='bench0@conference.localhost/load1'>`+
		`<x xmlns='http://jabber.org/protocol/muc'/><error type='wait'>`+
		`<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>`+
		`<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>The room is full.</text></error></presence>`), room)
	if !ok || ev.err == nil || ev.err.Error() != "presence error: service-unavailable (The room is full.)" {
		t.Errorf("error presence: %+v %v", ev, ok)
	}
}

func TestStampOf(t *testing.T) {
	for _, tc := range []struct {
		xml  string
		step int
		ts   int64
		ok   bool
	}{
		{`<message type='groupchat' id='s2-999'><body>s2-123 Hello</body></message>`, 2, 123, true},
		// A server that replaces the id keeps the body.
		{`<message type='groupchat' id='5f3a'><body>s0-77 Hello</body></message>`, 0, 77, true},
		// The id serves when the body is not ours.
		{`<message type='groupchat' id='s1-55'><body>hello there</body></message>`, 1, 55, true},
		{`<message type='error' id='s3-8'><error type='wait'/></message>`, 3, 8, true},
		{`<message type='groupchat' from='bench0@conference.localhost'><subject/></message>`, 0, 0, false},
		{`<message type='groupchat' id='s64-1'><body>s64-1 out of range</body></message>`, 0, 0, false},
		{`<message type='groupchat' id='x'><body>s-1 bad</body></message>`, 0, 0, false},
	} {
		step, ts, ok := stampOf(parseStanza(t, tc.xml))
		if step != tc.step || ts != tc.ts || ok != tc.ok {
			t.Errorf("%s: got %d %d %v", tc.xml, step, ts, ok)
		}
	}
}

func TestMUCCounting(t *testing.T) {
	st := &mucState{base: time.Now().Add(-time.Second)}
	now := int64(time.Since(st.base))
	msg := func(typ, stamp string) *xmlstream.Element {
		return parseStanza(t, `<message type='`+typ+`' id='`+stamp+`'><body>`+stamp+` `+mucBody+`</body></message>`)
	}
	st.message(msg("groupchat", "s0-"+itoa(now-int64(5*time.Millisecond))))
	st.message(msg("groupchat", "s0-"+itoa(now-int64(7*time.Millisecond))))
	st.message(msg("error", "s0-"+itoa(now)))
	st.message(msg("chat", "s0-"+itoa(now))) // not a room's message
	st.message(parseStanza(t, `<message type='groupchat'><body>someone else</body></message>`))
	st.message(parseStanza(t, `<message type='groupchat'><subject>topic</subject></message>`))
	if d, e, u := st.delivered[0].Load(), st.errors[0].Load(), st.unmatched.Load(); d != 2 || e != 1 || u != 1 {
		t.Errorf("delivered %d errors %d unmatched %d, want 2 1 1", d, e, u)
	}
	if l := st.steps[0].Latency.Percentile(1); l < 7*time.Millisecond || l > 50*time.Millisecond {
		t.Errorf("latency %v, want about 7ms", l)
	}
	if st.last[0].Load() < now {
		t.Error("last delivery not recorded")
	}
}

func itoa(n int64) string { return string(appendStamp(nil, "", n)) }

func TestMUCStep(t *testing.T) {
	s := &MUCStep{Target: 100, Sent: 1000, Expected: 100000, Delivered: 99950,
		Window: 10 * time.Second, Span: 10 * time.Second, ServerCPU: 2 * time.Second}
	if s.Achieved() != 100 || s.DeliveredPerSecond() != 9995 {
		t.Errorf("achieved %v delivered/s %v", s.Achieved(), s.DeliveredPerSecond())
	}
	if l := s.Loss(); l < 0.00049 || l > 0.00051 {
		t.Errorf("loss %v, want 0.0005", l)
	}
	if c := s.ServerCPUPer1000(); c < 20009*time.Microsecond || c > 20011*time.Microsecond {
		t.Errorf("CPU per 1000 %v, want 20.01ms", c)
	}
	for range 100 {
		s.Latency.Record(10 * time.Millisecond)
	}
	if !s.Passed(100*time.Millisecond, 0.001) {
		t.Error("a step within every bound failed")
	}
	if s.Passed(100*time.Millisecond, 0.0001) {
		t.Error("a step losing 0.05% passed a 0.01% bound")
	}
	if s.Passed(10*time.Millisecond, 0.001) {
		t.Error("p99 must stay below the bound, not reach it")
	}
	slow := &MUCStep{Target: 100, Sent: 900, Expected: 90000, Delivered: 90000, Window: 10 * time.Second}
	slow.Latency.Record(time.Millisecond)
	if slow.Passed(time.Second, 0.001) {
		t.Error("a step at 90% of its target passed")
	}
	late := &MUCStep{Delivered: 1250, Window: time.Second, Span: 1250 * time.Millisecond}
	early := &MUCStep{Delivered: 900, Window: time.Second, Span: 900 * time.Millisecond}
	if late.DeliveredPerSecond() != 1000 || early.DeliveredPerSecond() != 900 {
		t.Errorf("delivered/s %v and %v, want 1000 and 900", late.DeliveredPerSecond(), early.DeliveredPerSecond())
	}
	dup := MUCStep{Expected: 10, Delivered: 12}
	if dup.Loss() != 0 || (&MUCStep{}).DeliveredPerSecond() != 0 || (&MUCStep{}).ServerCPUPer1000() != 0 {
		t.Error("empty or duplicated steps")
	}
	if (&MUCStep{Target: 1}).Passed(time.Second, 1) {
		t.Error("a step that sent nothing passed")
	}
}

func TestMUCLayout(t *testing.T) {
	c := MUCConfig{Options: Options{Domain: "localhost"}, Rooms: 3, Occupants: 4, Senders: 5, Rate: 1, Duration: time.Second}
	if err := c.defaults(); err != nil {
		t.Fatal(err)
	}
	if c.Service != "conference.localhost" || c.roomJID(2) != "bench2@conference.localhost" {
		t.Errorf("service %q room %q", c.Service, c.roomJID(2))
	}
	// Senders go round the rooms first.
	var got []int
	for k := range 5 {
		got = append(got, c.senderOf(k))
	}
	if want := []int{0, 4, 8, 1, 5}; !equalInts(got, want) {
		t.Errorf("senders %v, want %v", got, want)
	}
	if got, want := c.joinOrder(), []int{1, 5, 9, 2, 6, 10, 3, 7, 11}; !equalInts(got, want) {
		t.Errorf("join order %v, want %v", got, want)
	}
	for _, bad := range []MUCConfig{
		{Rooms: 0, Occupants: 4, Senders: 1, Rate: 1, Duration: time.Second},
		{Rooms: 2, Occupants: 2, Senders: 5, Rate: 1, Duration: time.Second},
		{Rooms: 1000, Occupants: 20, Senders: 1, Rate: 1, Duration: time.Second},
		{Rooms: 1, Occupants: 2, Senders: 1, Rate: 0, Duration: time.Second},
	} {
		if err := bad.defaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestMUCStanzas checks that the join and the messages are well-formed
// and carry what the readers look for.
func TestMUCStanzas(t *testing.T) {
	el := parseStanza(t, string(joinPresence("bench0@conference.localhost", "load7")))
	if el.Attr("to") != "bench0@conference.localhost/load7" || el.Child(nsMUC, "x") == nil {
		t.Errorf("join: %s", el)
	}
	b := []byte("<message type='groupchat' to='bench0@conference.localhost' id='")
	b = appendStamp(b, "s4-", 42)
	b = append(b, "'><body>"...)
	b = appendStamp(b, "s4-", 42)
	b = append(b, " "+mucBody+"</body></message>"...)
	step, ts, ok := stampOf(parseStanza(t, string(b)))
	if !ok || step != 4 || ts != 42 {
		t.Errorf("message stamp: %d %d %v", step, ts, ok)
	}
}

// TestConfigure runs the owner's side of room creation against a fake
// room: the form is fetched and the raised maximum submitted, or an
// instant configuration when the room is large enough.
func TestConfigure(t *testing.T) {
	for _, tc := range []struct {
		name, current string
		raised        bool
		submit        string
	}{
		{"raise", "200", true, "<field var='muc#roomconfig_maxusers'><value>1000</value></field>"},
		{"instant", "none", false, "<x xmlns='jabber:x:data' type='submit'/>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			o := &occupant{cn: &Conn{raw: client, nc: client}, nick: "load0", iq: make(chan *xmlstream.Element, 2)}
			c := &MUCConfig{Occupants: 1000, Service: "conference.localhost", RoomPrefix: "bench", Options: Options{Timeout: 5 * time.Second}}
			got := make(chan string, 2)
			go func() {
				buf := make([]byte, 4096)
				for range 2 {
					n, err := server.Read(buf)
					if err != nil {
						close(got)
						return
					}
					req := string(buf[:n])
					got <- req
					el, err := xmlstream.ParseStanza(buf[:n], xmlstream.NSClient)
					if err != nil {
						close(got)
						return
					}
					ans := `<iq type='result' id='` + el.Attr("id") + `'/>`
					if el.Attr("type") == "get" {
						ans = `<iq type='result' id='cfg-get'><query xmlns='http://jabber.org/protocol/muc#owner'>` +
							`<x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/muc#roomconfig</value></field>` +
							`<field var='muc#roomconfig_maxusers' type='list-single'><value>` + tc.current + `</value>` +
							`<option><value>200</value></option><option><value>1000</value></option><option><value>none</value></option></field></x></query></iq>`
					}
					a, _ := xmlstream.ParseStanza([]byte(ans), xmlstream.NSClient)
					o.iq <- a
				}
			}()
			raised, err := o.configure(c)
			if err != nil || raised != tc.raised {
				t.Fatalf("configure: %v %v", raised, err)
			}
			if get := <-got; !strings.Contains(get, "type='get'") || !strings.Contains(get, "to='bench0@conference.localhost'") {
				t.Errorf("form request: %s", get)
			}
			if set := <-got; !strings.Contains(set, tc.submit) {
				t.Errorf("submission %s lacks %s", set, tc.submit)
			}
		})
	}
	// A refusal is reported with its condition.
	client, server := net.Pipe()
	defer client.Close()
	o := &occupant{cn: &Conn{raw: client, nc: client}, iq: make(chan *xmlstream.Element, 2)}
	go func() {
		buf := make([]byte, 4096)
		if _, err := server.Read(buf); err == nil {
			a, _ := xmlstream.ParseStanza([]byte(`<iq type='error' id='cfg-get'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`), xmlstream.NSClient)
			o.iq <- a
		}
	}()
	_, err := o.configure(&MUCConfig{Occupants: 10, Service: "c", RoomPrefix: "r", Options: Options{Timeout: 5 * time.Second}})
	if err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("refused form: %v", err)
	}
}
