package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"unicode/utf8"

	"github.com/xdg-go/scram"
)

// The HT mechanisms ("SASL HT", draft-schmaus-kitten-sasl-ht) used by FAST
// (XEP-0484): the client proves it holds a token with an HMAC over the
// channel binding named by the suffix.
const (
	HTNone     = "HT-SHA-256-NONE"
	HTEndpoint = "HT-SHA-256-ENDP" // tls-server-end-point
	HTExporter = "HT-SHA-256-EXPR" // tls-exporter
)

// HTMechanisms returns the HT mechanisms usable on a connection, strongest
// first: the channel-bound ones need the binding on this TLS connection.
func HTMechanisms(cs *TLSInfo) []string {
	var m []string
	for _, cb := range ChannelBindings(cs) {
		switch cb {
		case CBExporter:
			m = append(m, HTExporter)
		case CBServerEndPoint:
			m = append(m, HTEndpoint)
		}
	}
	return append(m, HTNone)
}

// HTBinding returns the channel binding data that mech signs on the
// connection cs: none for -NONE. It fails with a Failure for a mechanism
// that is not HT or a binding the connection cannot provide.
func HTBinding(mech string, cs *TLSInfo) ([]byte, error) {
	switch mech {
	case HTNone:
		return nil, nil
	case HTEndpoint:
		if cs != nil {
			if cb, err := serverEndPoint(cs.Leaf); err == nil {
				return cb.Data, nil
			}
		}
	case HTExporter:
		if cs != nil && cs.State != nil {
			if cb, err := scram.NewTLSExporterBinding(cs.State); err == nil {
				return cb.Data, nil
			}
		}
	default:
		return nil, fail("invalid-mechanism", "")
	}
	return nil, fail("invalid-mechanism", "channel binding unavailable")
}

// htMACSize is the size of an HMAC-SHA-256.
const htMACSize = sha256.Size

// ParseHTInitial splits an HT initial response, authcid NUL HMAC, into the
// username and the client's HMAC. It fails with malformed-request unless
// the username is non-empty UTF-8 and the HMAC has the hash's size.
func ParseHTInitial(in []byte) (user string, clientMAC []byte, err error) {
	u, m, ok := bytes.Cut(in, []byte{0})
	if !ok || len(u) == 0 || !utf8.Valid(u) || len(m) != htMACSize {
		return "", nil, fail("malformed-request", "")
	}
	return string(u), m, nil
}

// HTInitiator is the HMAC a client holding key sends: HMAC(key,
// "Initiator" || cb). Tokens are longer than SHA-256's block, so HMAC
// keys with their SHA-256: the server, which stores only that hash, passes
// it as key and gets the same value.
func HTInitiator(key, cb []byte) []byte { return htMAC(key, "Initiator", cb) }

// HTResponder is the server's proof for the client: HMAC(key,
// "Responder" || cb).
func HTResponder(key, cb []byte) []byte { return htMAC(key, "Responder", cb) }

func htMAC(key []byte, label string, cb []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write(cb)
	return m.Sum(nil)
}

// HTKey returns the HMAC key equivalent to token, which is what the server
// keeps: its SHA-256. It is the token's own HMAC key only for tokens longer
// than SHA-256's 64-byte block, which is why NewFastToken makes them so.
func HTKey(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CheckHT reports whether clientMAC proves knowledge of the token whose
// key (HTKey) is key, on a connection with binding data cb.
func CheckHT(key, cb, clientMAC []byte) bool {
	return hmac.Equal(HTInitiator(key, cb), clientMAC)
}
