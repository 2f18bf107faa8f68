package link

import (
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// FuzzEvents feeds arbitrary frames, split in two reads, through the
// parser of a link stream, the chunk assembler and the credential parser:
// nothing may panic, and a reassembled event is always an element.
func FuzzEvents(f *testing.F) {
	f.Add([]byte("<chunk id='1' more='1'>&lt;deliver sid='s'&gt;</chunk><chunk id='1'>&lt;/deliver&gt;</chunk>"), 10)
	f.Add([]byte("<chunk id='1' more='1'>&lt;to o='a'&gt;</chunk><chunk id='2'>&lt;to o='b'/&gt;</chunk><chunk id='1'>&lt;/to&gt;</chunk>"), 40)
	f.Add([]byte("<cred-result id='1' hash='SHA-256' iterations='4096' salt='c2FsdA==' stored-key='c3Q=' server-key='c2U='/>"), 5)
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
				case "a":
					_, _ = parseUint(el.Attr("h"))
				default:
					_ = payload(el)
				}
			}
		}
	})
}
