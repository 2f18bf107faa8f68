package s2s

import (
	"errors"
	"strconv"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// NSSM is the namespace of stream management (XEP-0198). On server
// streams Ambrosia uses its acknowledgements only, without resumption: a
// stream that breaks loses nothing that was not acknowledged, because
// the unacknowledged stanzas go out again on a new stream.
const NSSM = "urn:xmpp:sm:3"

// maxTries bounds how many streams one stanza is written to before it is
// bounced: a stanza that keeps breaking streams must not loop forever.
const maxTries = 2

var (
	smFeature  = []byte("<sm xmlns='" + NSSM + "'/>")
	smEnable   = []byte("<enable xmlns='" + NSSM + "'/>")
	smEnabled  = []byte("<enabled xmlns='" + NSSM + "'/>")
	smRequest  = []byte("<r xmlns='" + NSSM + "'/>")
	smNotAuthd = []byte("<failed xmlns='" + NSSM + "'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>")
)

// errBadAck is an <a/> without a valid count.
var errBadAck = errors.New("stream management: <a/> without a valid h")

// parseAck returns the count of an <a h='…'/> (XEP-0198 §4): an unsigned
// 32-bit decimal number.
func parseAck(el *xmlstream.Element) (uint32, error) {
	if el.Space != NSSM || el.Local != "a" {
		return 0, errBadAck
	}
	h := el.Attr("h")
	if h == "" || h[0] == '+' {
		return 0, errBadAck
	}
	n, err := strconv.ParseUint(h, 10, 32)
	if err != nil {
		return 0, errBadAck
	}
	return uint32(n), nil
}

// ackXML is <a h='h'/>.
func ackXML(h uint32) []byte {
	b := []byte("<a xmlns='" + NSSM + "' h='")
	b = strconv.AppendUint(b, uint64(h), 10)
	return append(b, "'/>"...)
}
