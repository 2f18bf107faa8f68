package xeps

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// DOAP writes the project's DOAP description (the format xmpp.org lists
// software from), with one entry per implemented specification.
func DOAP(w io.Writer) error {
	var b bytes.Buffer
	esc := func(s string) string {
		var e bytes.Buffer
		_ = xml.EscapeText(&e, []byte(s))
		return e.String()
	}
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated from internal/xeps (go test ./internal/xeps -update); do not edit. -->
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://usefulinc.com/ns/doap#"
         xmlns:xmpp="https://linkmauve.fr/ns/xmpp-doap#">
  <Project>
    <name>Ambrosia</name>
    <shortdesc>An XMPP server platform: one binary, all in one process or split across machines</shortdesc>
    <programming-language>Go</programming-language>
    <category rdf:resource="https://linkmauve.fr/ns/xmpp-doap#category-server"/>
    <os>Linux</os>
`)
	for _, s := range Specs() {
		switch {
		case strings.HasPrefix(s.ID, "RFC "):
			fmt.Fprintf(&b, "    <implements rdf:resource=\"https://www.rfc-editor.org/info/rfc%s\"/>\n", strings.TrimPrefix(s.ID, "RFC "))
		case strings.HasPrefix(s.ID, "XEP-"):
			fmt.Fprintf(&b, "    <implements>\n      <xmpp:SupportedXep>\n        <xmpp:xep rdf:resource=\"https://xmpp.org/extensions/%s.html\"/>\n        <xmpp:status>%s</xmpp:status>\n",
				strings.ToLower(s.ID), esc(s.Status))
			if s.Note != "" {
				fmt.Fprintf(&b, "        <xmpp:note>%s</xmpp:note>\n", esc(s.Note))
			}
			b.WriteString("      </xmpp:SupportedXep>\n    </implements>\n")
		default:
			return fmt.Errorf("xeps: %q is neither an RFC nor a XEP", s.ID)
		}
	}
	b.WriteString("  </Project>\n</rdf:RDF>\n")
	_, err := w.Write(b.Bytes())
	return err
}
