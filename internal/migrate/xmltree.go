package migrate

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Limits of the XML reader: a portable data file is large, but no
// element in it is nested deeply.
const (
	xmlMaxDepth = 64
)

// elem is an element of an input file, with the line it starts on so that
// errors can point at it.
type elem struct {
	Name  xml.Name
	Attrs []xml.Attr
	Nodes []enode
	Line  int
}

// enode is one child: an element or character data.
type enode struct {
	El   *elem
	Text string
}

// FormatError reports malformed input: the file, the line and the element
// where the reader stopped.
type FormatError struct {
	File    string
	Line    int
	Element string // the element's name, "" for a syntax error
	Msg     string
}

func (e *FormatError) Error() string {
	where := e.File
	if e.Line > 0 {
		where += fmt.Sprintf(":%d", e.Line)
	}
	if e.Element != "" {
		return fmt.Sprintf("%s: <%s>: %s", where, e.Element, e.Msg)
	}
	return fmt.Sprintf("%s: %s", where, e.Msg)
}

// parseXML reads one XML document into a tree. DTDs and processing
// instructions other than the XML declaration are refused, as XMPP
// refuses them on a stream.
func parseXML(r io.Reader, file string) (*elem, error) {
	d := xml.NewDecoder(r)
	d.Strict = true
	var stack []*elem
	var root *elem
	for {
		line, _ := d.InputPos()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			if root == nil {
				return nil, &FormatError{File: file, Line: line, Msg: "no root element"}
			}
			return root, nil
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				el := ""
				if len(stack) > 0 {
					el = stack[len(stack)-1].Name.Local
				}
				return nil, &FormatError{File: file, Line: se.Line, Element: el, Msg: "not well-formed: " + se.Msg}
			}
			return nil, &FormatError{File: file, Line: line, Msg: err.Error()}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root != nil && len(stack) == 0 {
				return nil, &FormatError{File: file, Line: line, Element: t.Name.Local, Msg: "a second root element"}
			}
			if len(stack) >= xmlMaxDepth {
				return nil, &FormatError{File: file, Line: line, Element: t.Name.Local, Msg: fmt.Sprintf("nested deeper than %d", xmlMaxDepth)}
			}
			e := &elem{Name: t.Name, Line: line}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
					continue
				}
				e.Attrs = append(e.Attrs, a)
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Nodes = append(p.Nodes, enode{El: e})
			} else {
				root = e
			}
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, &FormatError{File: file, Line: line, Msg: "text outside the root element"}
				}
				continue
			}
			p := stack[len(stack)-1]
			if n := len(p.Nodes); n > 0 && p.Nodes[n-1].El == nil {
				p.Nodes[n-1].Text += string(t)
			} else {
				p.Nodes = append(p.Nodes, enode{Text: string(t)})
			}
		case xml.Directive:
			return nil, &FormatError{File: file, Line: line, Msg: "DTDs and other directives are not allowed"}
		case xml.ProcInst:
			if t.Target != "xml" {
				return nil, &FormatError{File: file, Line: line, Msg: "processing instructions are not allowed"}
			}
		case xml.Comment:
		}
	}
}

// attr returns the value of the unqualified attribute name.
func (e *elem) attr(name string) string {
	for _, a := range e.Attrs {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// children returns the child elements.
func (e *elem) children() []*elem {
	var out []*elem
	for _, n := range e.Nodes {
		if n.El != nil {
			out = append(out, n.El)
		}
	}
	return out
}

// child returns the first child element with that namespace and name.
func (e *elem) child(space, local string) *elem {
	for _, n := range e.Nodes {
		if n.El != nil && n.El.Name.Local == local && (space == "*" || n.El.Name.Space == space) {
			return n.El
		}
	}
	return nil
}

// text returns the concatenated character data of e's own children.
func (e *elem) text() string {
	var b strings.Builder
	for _, n := range e.Nodes {
		if n.El == nil {
			b.WriteString(n.Text)
		}
	}
	return b.String()
}

// is reports whether e has that namespace and name.
func (e *elem) is(space, local string) bool { return e.Name.Space == space && e.Name.Local == local }

// element converts e into the element type the server keeps.
func (e *elem) element() *xmlstream.Element {
	x := xmlstream.NewElement(e.Name.Space, e.Name.Local)
	for _, a := range e.Attrs {
		space := a.Name.Space
		if space == "xml" {
			space = xmlstream.NSXML
		}
		x.SetAttrNS(space, a.Name.Local, a.Value)
	}
	for _, n := range e.Nodes {
		if n.El != nil {
			x.AddChild(n.El.element())
		} else {
			x.AddText(n.Text)
		}
	}
	return x
}

// serialize returns e as the server stores it, with def as the default
// namespace left implicit.
func (e *elem) serialize(def string) ([]byte, error) { return checkedXML(e.element(), def) }

// checkedXML serializes el and parses the result with the server's own
// parser, so that nothing is stored that the server could not read back
// (names encoding/xml or Prosody let through, characters XML forbids).
func checkedXML(el *xmlstream.Element, def string) ([]byte, error) {
	b := el.AppendXML(nil, def)
	if _, err := xmlstream.ParseStanza(b, def); err != nil {
		return nil, fmt.Errorf("the server could not read this element back: %v", err)
	}
	return b, nil
}
