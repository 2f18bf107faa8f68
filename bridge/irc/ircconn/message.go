package ircconn

import (
	"errors"
	"slices"
	"strings"
)

// Message is one IRC line: RFC 1459 §2.3.1 with the IRCv3 message tags
// in front.
type Message struct {
	// Tags are the IRCv3 message tags, unescaped; nil when there are none.
	// A tag without a value has "".
	Tags map[string]string
	// Source is the prefix without its colon: a server name or
	// nick!user@host; "" when the line has none.
	Source string
	// Command is the command or three-digit numeric, in upper case.
	Command string
	// Params are the parameters; the last may hold spaces.
	Params []string
}

// ErrEmpty is a line without a command.
var ErrEmpty = errors.New("ircconn: no command in the line")

// Parse reads one line, with or without its CR LF. It is tolerant, as
// the modern IRC documents ask of clients: runs of spaces separate
// parameters, a tag without a value or with a bad escape is kept, and
// what cannot be a tag list or a source is skipped rather than refused.
// A line ends at its first CR or LF, as servers that split on either end
// it: what follows a lone CR is not part of the message (nor a second
// one smuggled in), and a command is never a CR that String would drop.
func Parse(line string) (*Message, error) {
	if i := strings.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	m := &Message{}
	line = strings.TrimLeft(line, " ")
	if strings.HasPrefix(line, "@") {
		var tags string
		tags, line = cut(line[1:])
		m.Tags = parseTags(tags)
	}
	if strings.HasPrefix(line, ":") {
		m.Source, line = cut(line[1:])
	}
	var cmd string
	cmd, line = cut(line)
	if cmd == "" || cmd[0] == '@' || cmd[0] == ':' {
		return nil, ErrEmpty
	}
	m.Command = strings.ToUpper(cmd)
	for line != "" {
		if line[0] == ':' {
			m.Params = append(m.Params, line[1:])
			break
		}
		var p string
		p, line = cut(line)
		m.Params = append(m.Params, p)
	}
	return m, nil
}

// cut returns the first space-separated word of s and the rest, with the
// spaces between them skipped.
func cut(s string) (word, rest string) {
	i := strings.IndexByte(s, ' ')
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i+1:], " ")
}

func parseTags(s string) map[string]string {
	tags := map[string]string{}
	for t := range strings.SplitSeq(s, ";") {
		k, v, _ := strings.Cut(t, "=")
		if k == "" {
			continue
		}
		tags[k] = unescapeTag(v)
	}
	if len(tags) == 0 {
		return nil
	}
	return tags
}

// unescapeTag undoes the escaping of a tag value: \: \s \\ \r \n; a
// backslash before another character stands for that character, and a
// lone one at the end is dropped.
func unescapeTag(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(v) {
			break
		}
		switch v[i] {
		case ':':
			b.WriteByte(';')
		case 's':
			b.WriteByte(' ')
		case 'r':
			b.WriteByte('\r')
		case 'n':
			b.WriteByte('\n')
		default:
			b.WriteByte(v[i])
		}
	}
	return b.String()
}

var tagEscaper = strings.NewReplacer(`\`, `\\`, ";", `\:`, " ", `\s`, "\r", `\r`, "\n", `\n`)

// String writes the message as a line, without CR LF; the tags in the
// order of their keys. Parse reads it back as the same message.
func (m *Message) String() string {
	var b strings.Builder
	if len(m.Tags) > 0 {
		b.WriteByte('@')
		keys := make([]string, 0, len(m.Tags))
		for k := range m.Tags {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(';')
			}
			b.WriteString(k)
			if v := m.Tags[k]; v != "" {
				b.WriteByte('=')
				tagEscaper.WriteString(&b, v)
			}
		}
		b.WriteByte(' ')
	}
	if m.Source != "" {
		b.WriteByte(':')
		b.WriteString(m.Source)
		b.WriteByte(' ')
	}
	b.WriteString(m.Command)
	for i, p := range m.Params {
		b.WriteByte(' ')
		if i == len(m.Params)-1 && (p == "" || p[0] == ':' || strings.IndexByte(p, ' ') >= 0) {
			b.WriteByte(':')
		}
		b.WriteString(p)
	}
	return b.String()
}

// Param returns the i-th parameter, "" if there are fewer.
func (m *Message) Param(i int) string {
	if i < len(m.Params) {
		return m.Params[i]
	}
	return ""
}

// Last returns the last parameter, "" if there is none.
func (m *Message) Last() string {
	if len(m.Params) == 0 {
		return ""
	}
	return m.Params[len(m.Params)-1]
}

// Nick returns the nick of the source: the part before '!' or '@', or
// the whole source (a server's name, or a bare nick).
func (m *Message) Nick() string {
	if i := strings.IndexAny(m.Source, "!@"); i >= 0 {
		return m.Source[:i]
	}
	return m.Source
}

// FromServer reports whether the source is a server rather than a user:
// no source at all, or one without '!' and '@' that holds a dot (nicks
// cannot).
func (m *Message) FromServer() bool {
	if m.Source == "" {
		return true
	}
	return !strings.ContainsAny(m.Source, "!@") && strings.Contains(m.Source, ".")
}
