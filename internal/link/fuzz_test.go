package link

import (
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// FuzzEvents feeds arbitrary frames, split in two reads, through the
// parser of a link stream, the chunk assembler and the parsers of
// credentials and FAST token requests and answers: nothing may panic, a
// reassembled event is always an element, and an accepted token request
// names a bare JID.
func FuzzEvents(f *testing.F) {
	f.Add([]byte("<chunk id='1' more='1'>&lt;deliver sid='s'&gt;</chunk><chunk id='1'>&lt;/deliver&gt;</chunk>"), 10)
	f.Add([]byte("<chunk id='1' more='1'>&lt;to o='a'&gt;</chunk><chunk id='2'>&lt;to o='b'/&gt;</chunk><chunk id='1'>&lt;/to&gt;</chunk>"), 40)
	f.Add([]byte("<cred-result id='1' hash='SHA-256' iterations='4096' salt='c2FsdA==' stored-key='c3Q=' server-key='c2U='/>"), 5)
	f.Add([]byte("<fast id='1' op='use' user='alice@example.org' agent='a' hash='n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=' count='3'/>"), 20)
	f.Add([]byte("<fast-result id='1'><token mechanism='HT-SHA-256-NONE' hash='AQID' expiry='2030-01-02T03:04:05Z' count='0'/></fast-result>"), 25)
	f.Add([]byte("<a xmlns='urn:xmpp:sm:3' h='18446744073709551615'/><deliver sid='x' o='g:1' k='1'><message xmlns='jabber:client'/></deliver>"), 30)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		p := xmlstream.NewParser(linkLimits)
		p.Feed(header("", "gateway", "id"))
		if split < 0 || split > len(data) {
			split = len(data) / 2
		}
		var a assembler
		for _, part := range [][]byte{data[:split], data[split:]} {
			p.Feed(part)
			for {
				ev, err := p.Next()
				if err != nil {
					break
				}
				if ev.Kind != xmlstream.EventElement {
					continue
				}
				el := ev.Elem
				switch el.Local {
				case "chunk":
					whole, err := a.add(el)
					if err == nil && whole != nil && whole.Local == "" {
						t.Fatal("reassembled an element without a name")
					}
				case "cred-result":
					_, _ = parseCredential(el)
				case "fast":
					if r, cond := parseFastRequest(el); cond == "" && (r.user == "" || strings.ContainsRune(r.user, '/')) {
						t.Fatalf("accepted a request for %q", r.user)
					}
				case "fast-result":
					_, _ = parseTokens(el, "a@b", "x")
				case "a":
					_, _ = parseUint(el.Attr("h"))
				default:
					_ = payload(el)
				}
			}
		}
	})
}
