package xmlstream

import "errors"

// ParseStanza parses one complete element that was serialized with
// AppendXML in a stream whose content namespace is contentNS, such as a
// stanza the server stored (offline messages, queues of unacknowledged
// stanzas). Input from peers goes through a Parser instead.
func ParseStanza(b []byte, contentNS string) (*Element, error) {
	p := NewParser(Limits{MaxStanzaBytes: len(b) + 1})
	p.Feed([]byte("<stream:stream xmlns='"))
	p.Feed(AppendEscapedAttr(nil, contentNS))
	p.Feed([]byte("' xmlns:stream='" + NSStream + "'>"))
	p.Feed(b)
	if _, err := p.Next(); err != nil {
		return nil, err
	}
	ev, err := p.Next()
	if err != nil {
		return nil, err
	}
	if ev.Kind != EventElement {
		return nil, errors.New("xmlstream: not a complete element")
	}
	if p.Buffered() != 0 {
		return nil, errors.New("xmlstream: data after the element")
	}
	return ev.Elem, nil
}
