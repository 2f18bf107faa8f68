package xmlstream

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

const (
	c2sHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`
	s2sHeader = `<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='a.example' to='b.example' version='1.0'>`
	cmpHeader = `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='muc.localhost'>`
	trailer   = `</stream:stream>`
)

// dump renders a tree canonically, with resolved names, so that trees can be
// compared and failures read.
func dump(e *Element) string {
	var b strings.Builder
	dumpTo(&b, e)
	return b.String()
}

func dumpTo(b *strings.Builder, e *Element) {
	fmt.Fprintf(b, "<{%s}%s", e.Space, e.Local)
	for _, a := range e.Attrs {
		fmt.Fprintf(b, " {%s}%s=%s", a.Space, a.Local, strconv.Quote(a.Value))
	}
	b.WriteString(">")
	// Adjacent text nodes are merged: how text is split is not part of the
	// data model.
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			b.WriteString(strconv.Quote(text.String()))
			text.Reset()
		}
	}
	for _, n := range e.Nodes {
		if n.Elem == nil {
			text.WriteString(n.Text)
			continue
		}
		flush()
		dumpTo(b, n.Elem)
	}
	flush()
	b.WriteString("</>")
}

// record is an event or error in comparable form.
type record struct {
	kind EventKind
	tree string
	cond string
}

func (r record) String() string {
	if r.cond != "" {
		return "error " + r.cond
	}
	return fmt.Sprintf("%d %s", r.kind, r.tree)
}

// drain collects events until the parser needs more input or fails.
func drain(p *Parser, out []record) ([]record, bool) {
	for {
		ev, err := p.Next()
		if errors.Is(err, ErrNeedMore) {
			return out, false
		}
		if err != nil {
			var xe *Error
			if !errors.As(err, &xe) {
				panic("error of unexpected type: " + err.Error())
			}
			return append(out, record{cond: xe.Condition}), true
		}
		r := record{kind: ev.Kind}
		if ev.Elem != nil {
			r.tree = dump(ev.Elem)
		}
		out = append(out, r)
	}
}

// parseChunks feeds the chunks one after the other and collects all events.
func parseChunks(chunks ...[]byte) []record {
	p := NewParser(DefaultLimits())
	return parseChunksWith(p, chunks...)
}

func parseChunksWith(p *Parser, chunks ...[]byte) []record {
	var out []record
	for _, c := range chunks {
		// The parser must not keep the fed slice: scribble over it after.
		buf := append([]byte(nil), c...)
		p.Feed(buf)
		for i := range buf {
			buf[i] = 'X'
		}
		var failed bool
		out, failed = drain(p, out)
		if failed {
			break
		}
	}
	return out
}

func joinRecords(rs []record) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}
