package xmlstream

import "testing"

// streamSamples are complete streams of each connection kind, used by the
// split, round-trip and fuzz tests.
var streamSamples = []string{
	c2sHeader + `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>` +
		"\n <message to='bob@localhost' type='chat' id='abc123' xml:lang='en'><body>Hello &amp; welcome, \u00e9\u65e5\U0001F600</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>" +
		`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>` +
		`<presence><x xmlns='vcard-temp:x:update' xmlns:p='urn:p'><p:photo p:hash='a&lt;b'><![CDATA[<raw & data>]]></p:photo></x></presence>` +
		`<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>` + trailer,
	s2sHeader + `<db:result from='a.example' to='b.example'>b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3</db:result>` +
		`<message from='juliet@a.example/balcony' to='romeo@b.example'><body>Art thou not Romeo, and a Montague?</body><thread>e0ffe42b28561960c6b12b944a092794b9683a38</thread></message>` + "\r\n" + trailer,
	cmpHeader + `<handshake>aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e</handshake>` +
		`<iq from='muc.localhost' to='juliet@localhost/balcony' type='result' id='d'><query xmlns='http://jabber.org/protocol/disco#info'><identity category='conference' type='text' name='Chat &quot;rooms&quot;'/><feature var='http://jabber.org/protocol/muc'/></query></iq>` + trailer,
	`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><message><body>unterminated`,
	c2sHeader + `<message><body>a</body></message><a></b>`,
}

func TestSplitFeeding(t *testing.T) {
	for _, s := range streamSamples {
		want := joinRecords(parseChunks([]byte(s)))
		for i := 0; i <= len(s); i++ {
			got := joinRecords(parseChunks([]byte(s[:i]), []byte(s[i:])))
			if got != want {
				t.Fatalf("split at %d of %q:\n got %s\nwant %s", i, s, got, want)
			}
		}
		var bytewise [][]byte
		for i := 0; i < len(s); i++ {
			bytewise = append(bytewise, []byte{s[i]})
		}
		if got := joinRecords(parseChunks(bytewise...)); got != want {
			t.Fatalf("byte by byte %q:\n got %s\nwant %s", s, got, want)
		}
		// Three-way splits at a coarser grid catch state carried across
		// several partial feeds.
		for i := 0; i <= len(s); i += 7 {
			for j := i; j <= len(s); j += 5 {
				if got := joinRecords(parseChunks([]byte(s[:i]), []byte(s[i:j]), []byte(s[j:]))); got != want {
					t.Fatalf("split at %d,%d of %q:\n got %s\nwant %s", i, j, s, got, want)
				}
			}
		}
	}
}
