package sm_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

const (
	nsMAM = "urn:xmpp:mam:2"
	nsSID = "urn:xmpp:sid:0"
	nsRSM = "http://jabber.org/protocol/rsm"
)

// mamPage is what one archive query returned.
type mamPage struct {
	ids, bodies []string
	stamps      []string
	fin         *xmlstream.Element // the IQ
}

func (p mamPage) rsm(name string) string {
	if f := p.fin.Child(nsMAM, "fin"); f != nil {
		if set := f.Child(nsRSM, "set"); set != nil {
			if e := set.Child(nsRSM, name); e != nil {
				return e.Text()
			}
		}
	}
	return ""
}

func (p mamPage) complete() bool {
	return p.fin.Child(nsMAM, "fin").Attr("complete") == "true"
}

// queryMAM sends an archive query with the given form fields (var=value
// pairs) and RSM set, and collects the results up to the IQ answer.
func queryMAM(t *testing.T, c *xmpptest.Client, id string, fields []string, rsm string) mamPage {
	t.Helper()
	var form strings.Builder
	if fields != nil {
		form.WriteString("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>")
		for _, f := range fields {
			k, v, _ := strings.Cut(f, "=")
			fmt.Fprintf(&form, "<field var='%s'><value>%s</value></field>", k, v)
		}
		form.WriteString("</x>")
	}
	c.Send("<iq type='set' id='" + id + "'><query xmlns='urn:xmpp:mam:2' queryid='q-" + id + "'>" + form.String() + rsm + "</query></iq>")
	var p mamPage
	for {
		el := c.Expect("archive result", func(e *xmlstream.Element) bool {
			return isIQ(id)(e) || (e.Local == "message" && e.Child(nsMAM, "result") != nil)
		})
		if el.Local == "iq" {
			p.fin = el
			return p
		}
		r := el.Child(nsMAM, "result")
		if r.Attr("queryid") != "q-"+id || el.Attr("to") != c.JID {
			t.Fatalf("result of another query or to another resource: %s", el)
		}
		fw := r.Child("urn:xmpp:forward:0", "forwarded")
		msg := fw.Child(xmlstream.NSClient, "message")
		p.ids = append(p.ids, r.Attr("id"))
		p.bodies = append(p.bodies, msg.Child(xmlstream.NSClient, "body").Text())
		p.stamps = append(p.stamps, fw.Child("urn:xmpp:delay", "delay").Attr("stamp"))
	}
}

func wantIQError(t *testing.T, el *xmlstream.Element, cond string) {
	t.Helper()
	if el.Attr("type") != "error" || !strings.Contains(el.String(), cond) {
		t.Fatalf("want %s error, got %s", cond, el)
	}
}

func stanzaIDs(msg *xmlstream.Element) map[string]string {
	out := map[string]string{}
	for c := range msg.ChildElements {
		if c.Space == nsSID && c.Local == "stanza-id" {
			out[c.Attr("by")] = c.Attr("id")
		}
	}
	return out
}

func TestMAMArchivesBothSides(t *testing.T) {
	_, a, b := twoUsers(t)
	var delivered []string
	for i := range 3 {
		a.Send(fmt.Sprintf("<message to='bob@localhost' type='chat' id='m%d'><body>hello %d</body></message>", i, i))
		m := b.Expect("message", func(e *xmlstream.Element) bool { return e.Attr("id") == fmt.Sprintf("m%d", i) })
		sid := stanzaIDs(m)["bob@localhost"]
		if sid == "" {
			t.Fatalf("delivered message has no stanza-id: %s", m)
		}
		delivered = append(delivered, sid)
	}
	// Not archived: chat states, errors, headlines, groupchat.
	a.Send("<message to='bob@localhost' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
	a.Send("<message to='bob@localhost' type='headline'><body>news</body></message>")
	a.Send("<message to='bob@localhost' type='groupchat'><body>room</body></message>")

	pa := queryMAM(t, a, "qa", []string{"with=bob@localhost"}, "")
	pb := queryMAM(t, b, "qb", nil, "")
	for _, p := range []mamPage{pa, pb} {
		if p.fin.Attr("type") != "result" || !p.complete() || p.rsm("count") != "3" {
			t.Fatalf("fin: %s", p.fin)
		}
		if strings.Join(p.bodies, "|") != "hello 0|hello 1|hello 2" {
			t.Fatalf("bodies %q", p.bodies)
		}
	}
	if strings.Join(pb.ids, " ") != strings.Join(delivered, " ") {
		t.Fatalf("archive ids %v, stanza-ids %v", pb.ids, delivered)
	}
	if pb.rsm("first") != pb.ids[0] || pb.rsm("last") != pb.ids[2] {
		t.Fatalf("fin bounds: %s", pb.fin)
	}
	// Filter by a correspondent with no messages.
	if p := queryMAM(t, a, "qc", []string{"with=carol@localhost"}, ""); len(p.ids) != 0 || !p.complete() || p.rsm("count") != "0" {
		t.Fatalf("with carol: %v %s", p.ids, p.fin)
	}
	// Start and end select by the archive stamps, inclusively.
	p := queryMAM(t, b, "qd", []string{"start=" + pb.stamps[1], "end=" + pb.stamps[1]}, "")
	if strings.Join(p.bodies, "|") != "hello 1" {
		t.Fatalf("start/end: %q", p.bodies)
	}
	p = queryMAM(t, b, "qe", []string{"start=" + pb.stamps[1]}, "")
	if strings.Join(p.bodies, "|") != "hello 1|hello 2" {
		t.Fatalf("start: %q", p.bodies)
	}
	p = queryMAM(t, b, "qf", []string{"end=" + pb.stamps[1]}, "")
	if strings.Join(p.bodies, "|") != "hello 0|hello 1" {
		t.Fatalf("end: %q", p.bodies)
	}
	// The account advertises the archive.
	a.Send("<iq type='get' to='alice@localhost' id='di'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	d := a.Expect("disco", isIQ("di")).String()
	for _, f := range []string{nsMAM, nsSID} {
		if !strings.Contains(d, f) {
			t.Fatalf("own account disco lacks %s: %s", f, d)
		}
	}
	b.Send("<iq type='get' to='alice@localhost' id='di2'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if d := b.Expect("disco", isIQ("di2")).String(); !strings.Contains(d, nsMAM) {
		t.Fatalf("account disco lacks mam: %s", d)
	}
}

func TestMAMPaging(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	a := s.Login(t, "alice", "wonderland", "a")
	const n = 120
	for i := range n {
		// Bob is offline: his copies go to offline storage, and his
		// archive gets them all the same.
		a.Send(fmt.Sprintf("<message to='bob@localhost' type='chat'><body>%d</body></message>", i))
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprint(i))
	}
	b := s.Login(t, "bob", "builder", "b")
	for _, c := range []*xmpptest.Client{a, b} {
		// Forward, from the start.
		var bodies, ids []string
		after := ""
		for page := 0; ; page++ {
			rsm := "<set xmlns='http://jabber.org/protocol/rsm'><max>50</max>"
			if after != "" {
				rsm += "<after>" + after + "</after>"
			}
			p := queryMAM(t, c, fmt.Sprintf("f%d", page), []string{"with=" + map[bool]string{true: "bob@localhost", false: "alice@localhost"}[c == a]}, rsm+"</set>")
			if p.rsm("count") != fmt.Sprint(n) || len(p.ids) > 50 {
				t.Fatalf("page %d: %d items, fin %s", page, len(p.ids), p.fin)
			}
			bodies, ids = append(bodies, p.bodies...), append(ids, p.ids...)
			if p.complete() != (page == 2) {
				t.Fatalf("page %d: complete=%v", page, p.complete())
			}
			if p.complete() {
				break
			}
			after = p.rsm("last")
		}
		if strings.Join(bodies, ",") != strings.Join(want, ",") {
			t.Fatalf("%s forward: %v", c.JID, bodies)
		}
		// Backward, from the last page.
		var back []string
		before := ""
		for page := 0; ; page++ {
			p := queryMAM(t, c, fmt.Sprintf("b%d", page), nil, "<set xmlns='http://jabber.org/protocol/rsm'><max>50</max><before>"+before+"</before></set>")
			back = append(p.bodies, back...)
			if p.complete() != (page == 2) {
				t.Fatalf("backward page %d: complete=%v (%d items)", page, p.complete(), len(p.ids))
			}
			if page == 0 && (len(p.bodies) != 50 || p.bodies[49] != fmt.Sprint(n-1)) {
				t.Fatalf("last page: %v", p.bodies)
			}
			if p.complete() {
				break
			}
			before = p.rsm("first")
		}
		if strings.Join(back, ",") != strings.Join(want, ",") {
			t.Fatalf("%s backward: %v", c.JID, back)
		}
		// Form after-id/before-id select the same way as RSM.
		p := queryMAM(t, c, "between", []string{"after-id=" + ids[9], "before-id=" + ids[13]}, "")
		if strings.Join(p.bodies, ",") != "10,11,12" {
			t.Fatalf("between: %v", p.bodies)
		}
		// Without max, the server's page size applies.
		p = queryMAM(t, c, "nomax", nil, "")
		if len(p.ids) != 50 || p.complete() {
			t.Fatalf("default page: %d items, %s", len(p.ids), p.fin)
		}
	}
}

func TestMAMPrefs(t *testing.T) {
	_, a, b := twoUsers(t)
	a.Send("<iq type='get' id='p0'><prefs xmlns='urn:xmpp:mam:2'/></iq>")
	if r := a.Expect("prefs", isIQ("p0")); r.Child(nsMAM, "prefs").Attr("default") != "always" {
		t.Fatalf("default prefs: %s", r)
	}
	// Alice archives nothing except with carol.
	a.Send("<iq type='set' id='p1'><prefs xmlns='urn:xmpp:mam:2' default='never'><always><jid>carol@localhost</jid></always><never/></prefs></iq>")
	r := a.Expect("prefs", isIQ("p1"))
	if r.Attr("type") != "result" || !strings.Contains(r.String(), "carol@localhost") {
		t.Fatalf("set prefs: %s", r)
	}
	// Bob archives only his roster contacts; alice is not one yet.
	b.Send("<iq type='set' id='p2'><prefs xmlns='urn:xmpp:mam:2' default='roster'/></iq>")
	b.Expect("prefs", isIQ("p2"))
	a.Send("<message to='bob@localhost' type='chat' id='x1'><body>one</body></message>")
	m := b.Expect("message", func(e *xmlstream.Element) bool { return e.Attr("id") == "x1" })
	if len(stanzaIDs(m)) != 0 {
		t.Fatalf("unarchived message carries a stanza-id: %s", m)
	}
	b.Send("<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='alice@localhost'/></query></iq>")
	b.Expect("roster result", isIQ("r1"))
	a.Send("<message to='bob@localhost' type='chat' id='x2'><body>two</body></message>")
	m = b.Expect("message", func(e *xmlstream.Element) bool { return e.Attr("id") == "x2" })
	if stanzaIDs(m)["bob@localhost"] == "" {
		t.Fatalf("message from a contact not archived: %s", m)
	}
	if p := queryMAM(t, a, "qa", nil, ""); len(p.ids) != 0 {
		t.Fatalf("alice archived against her prefs: %v", p.bodies)
	}
	if p := queryMAM(t, b, "qb", nil, ""); strings.Join(p.bodies, ",") != "two" {
		t.Fatalf("bob's archive: %v", p.bodies)
	}
	b.Send("<iq type='set' id='p3'><prefs xmlns='urn:xmpp:mam:2' default='sometimes'/></iq>")
	wantIQError(t, b.Expect("error", isIQ("p3")), "bad-request")
}

func TestMAMForgedStanzaID(t *testing.T) {
	_, a, b := twoUsers(t)
	a.Send("<message to='bob@localhost' type='chat' id='f1'><body>trust me</body>" +
		"<stanza-id xmlns='urn:xmpp:sid:0' by='bob@localhost' id='forged'/>" +
		"<stanza-id xmlns='urn:xmpp:sid:0' by='room@conference.example' id='kept'/></message>")
	m := b.Expect("message", func(e *xmlstream.Element) bool { return e.Attr("id") == "f1" })
	ids := stanzaIDs(m)
	if ids["bob@localhost"] == "" || ids["bob@localhost"] == "forged" || ids["room@conference.example"] != "kept" {
		t.Fatalf("stanza-ids %v in %s", ids, m)
	}
	if n := strings.Count(m.String(), "by='bob@localhost'") + strings.Count(m.String(), `by="bob@localhost"`); n != 1 {
		t.Fatalf("%d stanza-ids by bob: %s", n, m)
	}
	// Nor may a client hand another one an archive result.
	a.Send("<message to='bob@localhost' id='f2'><result xmlns='urn:xmpp:mam:2' id='x'/></message>")
	wantIQError(t, a.Expect("refusal", func(e *xmlstream.Element) bool { return e.Attr("id") == "f2" }), "bad-request")
}

func TestMAMBadQueries(t *testing.T) {
	_, a, _ := twoUsers(t)
	a.Send("<message to='bob@localhost' type='chat'><body>x</body></message>")
	for i, q := range []string{
		"<x xmlns='jabber:x:data' type='submit'><field var='colour'><value>red</value></field></x>",
		"<x xmlns='jabber:x:data' type='submit'><field var='start'><value>yesterday</value></field></x>",
		"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:example</value></field></x>",
		"<x xmlns='jabber:x:data' type='form'/>",
		"<x xmlns='jabber:x:data' type='submit'><field var='with'><value>@@</value></field></x>",
		"<set xmlns='http://jabber.org/protocol/rsm'><max>many</max></set>",
	} {
		id := fmt.Sprintf("bad%d", i)
		a.Send("<iq type='set' id='" + id + "'><query xmlns='urn:xmpp:mam:2'>" + q + "</query></iq>")
		wantIQError(t, a.Expect("error", isIQ(id)), "bad-request")
	}
	a.Send("<iq type='set' id='nf'><query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><after>nope</after></set></query></iq>")
	wantIQError(t, a.Expect("error", isIQ("nf")), "item-not-found")
	// Only the owner queries an archive.
	a.Send("<iq type='set' id='other' to='bob@localhost'><query xmlns='urn:xmpp:mam:2'/></iq>")
	if e := a.Expect("error", isIQ("other")); e.Attr("type") != "error" {
		t.Fatalf("query of another's archive: %s", e)
	}
	// Field discovery.
	a.Send("<iq type='get' id='form'><query xmlns='urn:xmpp:mam:2'/></iq>")
	f := a.Expect("form", isIQ("form")).String()
	for _, v := range []string{"FORM_TYPE", "with", "start", "end", "after-id", "before-id"} {
		if !strings.Contains(f, "var='"+v+"'") && !strings.Contains(f, `var="`+v+`"`) {
			t.Fatalf("form lacks %s: %s", v, f)
		}
	}
}

// gatedArchive holds every archive write until open is closed, as a
// database that stalls.
type gatedArchive struct {
	storage.Archive
	open chan struct{}
}

func (g gatedArchive) AppendArchiveBatch(ctx context.Context, entries []storage.ArchiveEntry) error {
	<-g.open
	return g.Archive.AppendArchiveBatch(ctx, entries)
}

// TestMAMDeliveryAheadOfArchive: while the archive cannot write, a
// message is still delivered with its stanza-id, but the sender's Stream
// Management counter does not count it (nor what the sender sent after
// it); once the write is done, it does, and the archive holds the message
// under the id delivered.
func TestMAMDeliveryAheadOfArchive(t *testing.T) {
	open := make(chan struct{})
	s := xmpptest.StartServerWith(t, xmpptest.Options{SMDeps: func(d *sm.Deps) {
		d.Archive = gatedArchive{Archive: d.Archive, open: open}
	}})
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	a := s.Login(t, "alice", "wonderland", "a")
	a.EnableSM(false)
	b := s.Login(t, "bob", "builder", "b")

	a.Send("<message to='bob@localhost/b' type='chat' id='m1'><body>hello</body></message>")
	m := b.Expect("message", func(e *xmlstream.Element) bool { return e.Attr("id") == "m1" })
	sid := stanzaIDs(m)["bob@localhost"]
	if sid == "" {
		t.Fatalf("delivered without a stanza-id: %s", m)
	}
	a.Send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.Expect("ping result", isIQ("p1"))
	if h := a.RequestAck(); h != 0 {
		t.Fatalf("h=%d before the archive write, want 0", h)
	}

	close(open)
	// The query waits for the writes queued before it, and the
	// acknowledgement is released before the query can answer.
	p := queryMAM(t, b, "q1", nil, "")
	if len(p.ids) != 1 || p.ids[0] != sid || p.bodies[0] != "hello" {
		t.Fatalf("archive %v %q, want [%s] [hello]", p.ids, p.bodies, sid)
	}
	if h := a.RequestAck(); h != 2 {
		t.Fatalf("h=%d after the archive write, want 2", h)
	}
}
