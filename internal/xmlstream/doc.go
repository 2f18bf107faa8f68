// Package xmlstream parses and serializes the restricted XML of XMPP streams
// (RFC 6120 §11): an incremental parser that is fed bytes as they arrive and
// returns one element tree per top-level stanza, and a serializer for those
// trees.
//
// It is hand-written instead of built on encoding/xml because the stream sits
// on the hot path of every connection: encoding/xml allocates per token and
// reads from an io.Reader, so it can neither be fed arbitrary network splits
// without a goroutine per stream nor bound the memory of an element before it
// has been read. It also accepts constructs RFC 6120 forbids (comments,
// processing instructions, DOCTYPE, custom entities) that must be rejected
// with the right stream error. Here each stanza is copied once into a private
// buffer; names and unescaped-as-is values are strings over that buffer, and
// the tree comes from a few slabs, so a chat message costs a handful of
// allocations and an idle stream holds no buffer at all.
//
// # Limits
//
// Limits bounds one stream: MaxStanzaBytes applies to a top-level element as
// it accumulates, so an oversized stanza fails before its end arrives;
// MaxDepth bounds nesting inside a stanza (the stanza itself is level 1);
// MaxAttrs counts attributes including namespace declarations per element;
// MaxHeaderBytes bounds the XML declaration plus the stream header. Exceeding
// any of them is a policy-violation. Other errors are not-well-formed
// (including undeclared prefixes), restricted-xml (comments, processing
// instructions other than a leading XML declaration, DOCTYPE, entity
// references other than the five predefined ones) or unsupported-encoding.
//
// # Forwarding
//
// A parsed element remembers its raw inner bytes when they are
// self-contained: the element has no prefix and every prefix used in its
// subtree, other than xml, is declared inside that subtree (not on the element
// itself). Serializing such an element re-writes its start tag (so SetAttr and
// RemoveAttr take effect) and copies the inner bytes verbatim, so routing a
// stanza does not re-serialize its payload. Any change made through the
// methods of Element (AddChild, AddText, SetNodes, SetAttr on a descendant)
// drops the raw bytes of the affected ancestors; code that edits the Attrs or
// Nodes fields directly must call DropRaw.
//
// Prefixes are not preserved: the serializer declares default namespaces and
// generates attribute prefixes, and treats jabber:client, jabber:server and
// jabber:component:accept as one namespace at stanza level.
package xmlstream
