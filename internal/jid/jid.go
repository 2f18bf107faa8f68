package jid

import (
	"errors"
	"fmt"
	"strings"
)

// ErrMalformed is wrapped by every error that Parse, New and WithResource
// return, so callers can map any of them to the jid-malformed stanza error
// with errors.Is.
var ErrMalformed = errors.New("jid: malformed address")

// JID is a prepared XMPP address. The zero value is the empty address,
// which Parse never returns.
//
// JID is a small value type meant to be passed and compared by value. Two
// JIDs built by this package are equal with == exactly when they denote the
// same address.
type JID struct {
	// s holds the canonical string form so that String is free; the parts
	// are substrings of it.
	s string
	// at is the index of the '@' separator, or 0 when there is no
	// localpart; a localpart is never empty, so 0 is unambiguous. Offsets
	// fit in uint16 because a canonical JID is at most 3*1023+2 bytes.
	at uint16
	// slash is the index of the '/' separator, or len(s) when there is no
	// resourcepart.
	slash uint16
}

// Parse splits s into localpart, domainpart and resourcepart as described
// in RFC 7622 section 3.1, then prepares and enforces each part. A
// separator followed or preceded by an empty part is an error.
//
// When s is already canonical the returned JID shares memory with s instead
// of copying it.
func Parse(s string) (JID, error) {
	return parse(s, true)
}

// parse is Parse with a switch for the ASCII shortcut, so tests can compare
// both paths on the same input.
func parse(s string, fast bool) (JID, error) {
	// The first '/' starts the resourcepart even when an '@' follows it;
	// only an '@' before that '/' ends a localpart.
	rest, res, hasRes := strings.Cut(s, "/")
	local, dom, hasLocal := strings.Cut(rest, "@")
	if !hasLocal {
		local, dom = "", rest
	}
	return build(s, local, dom, res, hasLocal, hasRes, fast)
}

// MustParse is like Parse but panics if s is not a valid JID. It is meant
// for tests and for addresses fixed in source code.
func MustParse(s string) JID {
	j, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return j
}

// New prepares and joins the given parts. An empty local or resource means
// that part is absent; domain is required.
func New(local, domain, resource string) (JID, error) {
	return build("", local, domain, resource, local != "", resource != "", true)
}

// build prepares the parts and joins them. orig is the unsplit input, or ""
// when there is none; it is reused when preparation changed nothing, which
// keeps the common case free of allocations.
func build(orig, local, dom, res string, hasLocal, hasRes, fast bool) (JID, error) {
	var lp, dp, rp part
	var err error
	if hasLocal {
		if lp, err = prepareLocal(local, fast); err != nil {
			return JID{}, err
		}
	}
	if dp, err = prepareDomain(dom, fast); err != nil {
		return JID{}, err
	}
	if hasRes {
		if rp, err = prepareResource(res, fast); err != nil {
			return JID{}, err
		}
	}

	var j JID
	n := len(dp.s)
	if hasLocal {
		n += len(lp.s) + 1
		j.at = uint16(len(lp.s))
	}
	j.slash = uint16(n)
	if hasRes {
		n += len(rp.s) + 1
	}

	switch {
	case orig != "" && !lp.lower && !dp.lower && lp.s == local && dp.s == dom && rp.s == res:
		j.s = orig
	case !hasLocal && !hasRes && !dp.lower:
		j.s = dp.s
	default:
		var b strings.Builder
		b.Grow(n)
		if hasLocal {
			lp.writeTo(&b)
			b.WriteByte('@')
		}
		dp.writeTo(&b)
		if hasRes {
			b.WriteByte('/')
			rp.writeTo(&b)
		}
		j.s = b.String()
	}
	return j, nil
}

// Local returns the localpart, or "" if there is none.
func (j JID) Local() string {
	if j.at == 0 {
		return ""
	}
	return j.s[:j.at]
}

// domainStart is the index of the first byte of the domainpart in j.s.
func (j JID) domainStart() int {
	if j.at == 0 {
		return 0
	}
	return int(j.at) + 1
}

// Domain returns the domainpart.
func (j JID) Domain() string {
	return j.s[j.domainStart():j.slash]
}

// Resource returns the resourcepart, or "" if there is none.
func (j JID) Resource() string {
	if int(j.slash) == len(j.s) {
		return ""
	}
	return j.s[j.slash+1:]
}

// Bare returns j without its resourcepart. It does not allocate.
func (j JID) Bare() JID {
	return JID{s: j.s[:j.slash], at: j.at, slash: j.slash}
}

// DomainJID returns the JID made of j's domainpart alone. It does not
// allocate.
func (j JID) DomainJID() JID {
	d := j.Domain()
	return JID{s: d, slash: uint16(len(d))}
}

// WithResource returns the bare form of j with resourcepart r, prepared
// like the resourcepart in Parse. An empty r yields the bare JID, which
// makes it easy to clear a resource. It fails on the zero JID.
func (j JID) WithResource(r string) (JID, error) {
	if j.IsZero() {
		return JID{}, fmt.Errorf("%w: domainpart: empty", ErrMalformed)
	}
	b := j.Bare()
	if r == "" {
		return b, nil
	}
	rp, err := prepareResource(r, true)
	if err != nil {
		return JID{}, err
	}
	var sb strings.Builder
	sb.Grow(len(b.s) + 1 + len(rp.s))
	sb.WriteString(b.s)
	sb.WriteByte('/')
	sb.WriteString(rp.s)
	b.s = sb.String()
	return b, nil
}

// IsZero reports whether j is the zero JID.
func (j JID) IsZero() bool {
	return j.s == ""
}

// IsBare reports whether j has no resourcepart.
func (j JID) IsBare() bool {
	return int(j.slash) == len(j.s)
}

// Equal reports whether j and o denote the same address. It is the same as
// j == o and exists for readability and for generic code.
func (j JID) Equal(o JID) bool {
	return j == o
}

// String returns the canonical form of j. It does not allocate.
func (j JID) String() string {
	return j.s
}

// BareString returns the canonical form of j without its resourcepart. It
// does not allocate.
func (j JID) BareString() string {
	return j.s[:j.slash]
}

// MarshalText implements encoding.TextMarshaler, which also lets
// encoding/xml write a JID as an attribute value.
func (j JID) MarshalText() ([]byte, error) {
	return []byte(j.s), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with Parse, which also
// lets encoding/xml read a JID from an attribute value.
func (j *JID) UnmarshalText(b []byte) error {
	p, err := Parse(string(b))
	if err != nil {
		return err
	}
	*j = p
	return nil
}
