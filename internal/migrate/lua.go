package migrate

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// LuaTable is a Lua table as Prosody's util.serialization writes it: an
// array part and keyed entries, in the order of the source. Keys are
// strings, float64 numbers or booleans; values are those, nil, or
// *LuaTable.
type LuaTable struct {
	// Array holds the values given without a key or under the keys 1..n.
	Array []any
	// Keys and Values are the other entries, in source order.
	Keys   []any
	Values []any
}

// Get returns the value under the string key k, nil if none.
func (t *LuaTable) Get(k string) any {
	if t == nil {
		return nil
	}
	for i, key := range t.Keys {
		if s, ok := key.(string); ok && s == k {
			return t.Values[i]
		}
	}
	return nil
}

// String returns the string under k, "" if none or not a string.
func (t *LuaTable) String(k string) string {
	s, _ := t.Get(k).(string)
	return s
}

// Table returns the table under k, nil if none or not a table.
func (t *LuaTable) Table(k string) *LuaTable {
	v, _ := t.Get(k).(*LuaTable)
	return v
}

// Number returns the number under k and whether there was one.
func (t *LuaTable) Number(k string) (float64, bool) {
	f, ok := t.Get(k).(float64)
	return f, ok
}

// Bool returns the boolean under k, false if none.
func (t *LuaTable) Bool(k string) bool {
	b, _ := t.Get(k).(bool)
	return b
}

// luaLimits bound what the reader accepts, so that a hostile file cannot
// exhaust the stack or memory through nesting.
const luaMaxDepth = 100

// LuaSyntaxError reports where a Lua data file is malformed.
type LuaSyntaxError struct {
	Line int
	Msg  string
}

func (e *LuaSyntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// ParseLuaData parses a Prosody keyval data file: "return" followed by one
// value, optionally followed by a semicolon. Only the data subset that
// util.serialization writes is accepted: tables, strings, numbers
// (including (1/0) and the like), booleans and nil; no code runs.
func ParseLuaData(src []byte) (any, error) {
	p := &luaParser{src: src, line: 1}
	p.space()
	if !p.word("return") {
		return nil, p.errf("want 'return'")
	}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	p.accept(';')
	p.space()
	if p.pos < len(p.src) {
		return nil, p.errf("unexpected %q after the value", p.src[p.pos])
	}
	return v, nil
}

// ParseLuaList parses a Prosody list data file (what archive stores such as
// offline messages use): a sequence of "item(VALUE);" calls.
func ParseLuaList(src []byte) ([]any, error) {
	p := &luaParser{src: src, line: 1}
	var out []any
	for {
		p.space()
		if p.pos >= len(p.src) {
			return out, nil
		}
		if !p.word("item") {
			return nil, p.errf("want 'item('")
		}
		p.space()
		if !p.accept('(') {
			return nil, p.errf("want '(' after item")
		}
		v, err := p.value(0)
		if err != nil {
			return nil, err
		}
		p.space()
		if !p.accept(')') {
			return nil, p.errf("want ')'")
		}
		p.space()
		p.accept(';')
		out = append(out, v)
	}
}

type luaParser struct {
	src  []byte
	pos  int
	line int
}

func (p *luaParser) errf(format string, args ...any) error {
	return &LuaSyntaxError{Line: p.line, Msg: fmt.Sprintf(format, args...)}
}

// space skips white space and comments.
func (p *luaParser) space() {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '\n':
			p.line++
			p.pos++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			p.pos++
		case c == '-' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '-':
			p.pos += 2
			if level, ok := p.longOpen(); ok {
				_, _ = p.longBody(level)
				continue
			}
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

func (p *luaParser) accept(c byte) bool {
	if p.pos < len(p.src) && p.src[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// word consumes the keyword w if it stands alone at the position.
func (p *luaParser) word(w string) bool {
	if !bytes.HasPrefix(p.src[p.pos:], []byte(w)) {
		return false
	}
	end := p.pos + len(w)
	if end < len(p.src) && isIdentByte(p.src[end]) {
		return false
	}
	p.pos = end
	return true
}

func (p *luaParser) ident() string {
	start := p.pos
	if p.pos < len(p.src) && isIdentByte(p.src[p.pos]) && !(p.src[p.pos] >= '0' && p.src[p.pos] <= '9') {
		for p.pos < len(p.src) && isIdentByte(p.src[p.pos]) {
			p.pos++
		}
	}
	return string(p.src[start:p.pos])
}

func (p *luaParser) value(depth int) (any, error) {
	if depth > luaMaxDepth {
		return nil, p.errf("nested deeper than %d", luaMaxDepth)
	}
	p.space()
	if p.pos >= len(p.src) {
		return nil, p.errf("unexpected end of file")
	}
	c := p.src[p.pos]
	switch {
	case c == '{':
		return p.table(depth)
	case c == '"' || c == '\'':
		return p.quoted()
	case c == '[':
		if level, ok := p.longOpen(); ok {
			return p.longBody(level)
		}
		return nil, p.errf("unexpected '['")
	case c == '(':
		return p.parenNumber()
	case c == '-' || c == '.' || c >= '0' && c <= '9':
		return p.number()
	}
	switch id := p.ident(); id {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "nil":
		return nil, nil
	case "":
		return nil, p.errf("unexpected %q", c)
	default:
		return nil, p.errf("unexpected name %q (code is not data)", id)
	}
}

// parenNumber reads the forms util.serialization uses for numbers that
// have no literal: (1/0), (-1/0), (0/0).
func (p *luaParser) parenNumber() (any, error) {
	p.pos++
	p.space()
	a, err := p.number()
	if err != nil {
		return nil, err
	}
	p.space()
	if !p.accept('/') {
		return nil, p.errf("want '/' in a parenthesized number")
	}
	p.space()
	b, err := p.number()
	if err != nil {
		return nil, err
	}
	p.space()
	if !p.accept(')') {
		return nil, p.errf("want ')'")
	}
	x, y := a.(float64), b.(float64)
	if y == 0 && x == 0 {
		return math.NaN(), nil
	}
	return x / y, nil
}

func (p *luaParser) number() (any, error) {
	start := p.pos
	if p.pos >= len(p.src) {
		return nil, p.errf("unexpected end of file")
	}
	if p.src[p.pos] == '-' {
		p.pos++
	}
	hex := p.pos+1 < len(p.src) && p.src[p.pos] == '0' && (p.src[p.pos+1] == 'x' || p.src[p.pos+1] == 'X')
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c >= '0' && c <= '9' || c == '.' || c == 'x' || c == 'X' ||
			hex && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == 'p' || c == 'P') ||
			!hex && (c == 'e' || c == 'E') {
			p.pos++
			continue
		}
		if (c == '+' || c == '-') && p.pos > start {
			prev := p.src[p.pos-1]
			if !hex && (prev == 'e' || prev == 'E') || hex && (prev == 'p' || prev == 'P') {
				p.pos++
				continue
			}
		}
		break
	}
	lit := string(p.src[start:p.pos])
	if hex {
		neg := strings.HasPrefix(lit, "-")
		n, err := strconv.ParseUint(strings.TrimPrefix(lit, "-")[2:], 16, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(lit, 64)
			if ferr != nil {
				return nil, p.errf("bad number %q", lit)
			}
			return f, nil
		}
		f := float64(n)
		if neg {
			f = -f
		}
		return f, nil
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !strings.Contains(err.Error(), "range") {
		return nil, p.errf("bad number %q", lit)
	}
	return f, nil
}

// longOpen recognises "[[" or "[==[" at the position and consumes it.
func (p *luaParser) longOpen() (int, bool) {
	if p.pos >= len(p.src) || p.src[p.pos] != '[' {
		return 0, false
	}
	i := p.pos + 1
	level := 0
	for i < len(p.src) && p.src[i] == '=' {
		level++
		i++
	}
	if i < len(p.src) && p.src[i] == '[' {
		p.pos = i + 1
		return level, true
	}
	return 0, false
}

func (p *luaParser) longBody(level int) (any, error) {
	closer := []byte("]" + strings.Repeat("=", level) + "]")
	end := bytes.Index(p.src[p.pos:], closer)
	if end < 0 {
		return nil, p.errf("unfinished long string")
	}
	s := string(p.src[p.pos : p.pos+end])
	p.line += strings.Count(s, "\n")
	p.pos += end + len(closer)
	// Lua drops a newline that directly follows the opening bracket.
	if strings.HasPrefix(s, "\r\n") {
		s = s[2:]
	} else if strings.HasPrefix(s, "\n") {
		s = s[1:]
	}
	return s, nil
}

func (p *luaParser) quoted() (any, error) {
	q := p.src[p.pos]
	p.pos++
	var b strings.Builder
	for {
		if p.pos >= len(p.src) {
			return nil, p.errf("unfinished string")
		}
		c := p.src[p.pos]
		switch {
		case c == q:
			p.pos++
			return b.String(), nil
		case c == '\n':
			return nil, p.errf("newline in string")
		case c != '\\':
			b.WriteByte(c)
			p.pos++
			continue
		}
		p.pos++
		if p.pos >= len(p.src) {
			return nil, p.errf("unfinished escape")
		}
		e := p.src[p.pos]
		p.pos++
		switch e {
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case '\\', '"', '\'':
			b.WriteByte(e)
		case '\n':
			p.line++
			b.WriteByte('\n')
		case 'x':
			if p.pos+2 > len(p.src) {
				return nil, p.errf("bad \\x escape")
			}
			n, err := strconv.ParseUint(string(p.src[p.pos:p.pos+2]), 16, 8)
			if err != nil {
				return nil, p.errf("bad \\x escape")
			}
			b.WriteByte(byte(n))
			p.pos += 2
		case 'z':
			for p.pos < len(p.src) && strings.IndexByte(" \t\r\n\f\v", p.src[p.pos]) >= 0 {
				if p.src[p.pos] == '\n' {
					p.line++
				}
				p.pos++
			}
		case 'u':
			if !p.accept('{') {
				return nil, p.errf("bad \\u escape")
			}
			start := p.pos
			for p.pos < len(p.src) && p.src[p.pos] != '}' {
				p.pos++
			}
			n, err := strconv.ParseUint(string(p.src[start:p.pos]), 16, 31)
			if err != nil || !p.accept('}') {
				return nil, p.errf("bad \\u escape")
			}
			b.WriteRune(rune(n))
		default:
			if e < '0' || e > '9' {
				return nil, p.errf("bad escape \\%c", e)
			}
			n := int(e - '0')
			for i := 0; i < 2 && p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9'; i++ {
				n = n*10 + int(p.src[p.pos]-'0')
				p.pos++
			}
			if n > 255 {
				return nil, p.errf("escape \\%d out of range", n)
			}
			b.WriteByte(byte(n))
		}
	}
}

func (p *luaParser) table(depth int) (any, error) {
	p.pos++ // {
	t := &LuaTable{}
	for {
		p.space()
		if p.accept('}') {
			return t, nil
		}
		var key any
		hasKey := false
		switch {
		case p.pos+1 < len(p.src) && p.src[p.pos] == '[' && p.src[p.pos+1] != '[' && p.src[p.pos+1] != '=':
			p.pos++
			k, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			p.space()
			if !p.accept(']') {
				return nil, p.errf("want ']' after a key")
			}
			if k == nil {
				return nil, p.errf("nil table key")
			}
			if _, ok := k.(*LuaTable); ok {
				return nil, p.errf("table as table key")
			}
			key, hasKey = k, true
		default:
			save, saveLine := p.pos, p.line
			if id := p.ident(); id != "" && id != "true" && id != "false" && id != "nil" {
				p.space()
				if p.pos < len(p.src) && p.src[p.pos] == '=' {
					key, hasKey = id, true
					break
				}
			}
			p.pos, p.line = save, saveLine
		}
		if hasKey {
			p.space()
			if !p.accept('=') {
				return nil, p.errf("want '=' after a key")
			}
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if !hasKey {
			t.Array = append(t.Array, v)
		} else if f, ok := key.(float64); ok && f == float64(len(t.Array)+1) {
			t.Array = append(t.Array, v)
		} else if v != nil {
			t.Keys = append(t.Keys, key)
			t.Values = append(t.Values, v)
		}
		p.space()
		if p.accept(',') || p.accept(';') {
			continue
		}
		p.space()
		if p.accept('}') {
			return t, nil
		}
		return nil, p.errf("want ',', ';' or '}' in a table")
	}
}
