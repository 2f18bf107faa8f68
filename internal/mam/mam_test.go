package mam

import (
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

func TestIDsSortAndStamp(t *testing.T) {
	var g IDs
	prev := ""
	for range 1000 {
		id, stamp := g.Next()
		if id <= prev {
			t.Fatalf("id %s after %s", id, prev)
		}
		prev = id
		got, ok := StampOf(id)
		if !ok || !got.Equal(stamp) {
			t.Fatalf("StampOf(%s) = %v %v, want %v", id, got, ok, stamp)
		}
	}
	for _, bad := range []string{"", "abc", "zzzzzzzzzzzzzz", "-000000000001"} {
		if _, ok := StampOf(bad); ok {
			t.Errorf("StampOf(%q) accepted", bad)
		}
	}
}

func TestIDAt(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC)
	id := IDAt(t0)
	if got, ok := StampOf(id); !ok || !got.Equal(t0) {
		t.Fatalf("StampOf(IDAt(%v)) = %v %v", t0, got, ok)
	}
	if next := IDAt(t0.Add(time.Microsecond)); next <= id {
		t.Errorf("%s after %s", next, id)
	}
}

func TestParseQuery(t *testing.T) {
	parse := func(s string) *xmlstream.Element {
		el, err := xmlstream.ParseStanza([]byte(s), NS)
		if err != nil {
			t.Fatal(err)
		}
		return el
	}
	form := func(fields string) string {
		return "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field>" + fields + "</x></query>"
	}
	tests := []struct {
		name, q  string
		bare     bool
		with     string
		max      int
		last, ok bool
	}{
		{"Empty", "<query xmlns='urn:xmpp:mam:2'/>", true, "", DefaultMax, false, true},
		{"WithBare", form("<field var='with'><value>room@muc.example/nick</value></field>"), true, "room@muc.example", DefaultMax, false, true},
		{"WithFull", form("<field var='with'><value>room@muc.example/nick</value></field>"), false, "room@muc.example/nick", DefaultMax, false, true},
		{"UnknownField", form("<field var='fulltext'><value>x</value></field>"), true, "", 0, false, false},
		{"LastPage", "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>9999</max><before/></set></query>", true, "", MaxMax, true, true},
		{"Index", "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><index>3</index></set></query>", true, "", 0, false, false},
		{"EndBeforeStart", form("<field var='start'><value>2026-01-02T00:00:00Z</value></field><field var='end'><value>2026-01-01T00:00:00Z</value></field>"), true, "", 0, false, false},
	}
	for _, tt := range tests {
		aq, err := ParseQuery(parse(tt.q), tt.bare)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v", tt.name, err)
			continue
		}
		if tt.ok && (aq.With != tt.with || aq.Max != tt.max || aq.Last != tt.last) {
			t.Errorf("%s: %+v", tt.name, aq)
		}
	}
}
