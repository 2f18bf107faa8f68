package migrate

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseLuaData(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     any
	}{
		{"string", `return "a\"b\\c\n\065\x42\z   C\u{263A}";`, "a\"b\\c\nABC☺"},
		{"single quotes", `return 'it''s'`, nil},
		{"number", "return 42", 42.0},
		{"negative float", "return -1.5e3", -1500.0},
		{"hex", "return 0x1F", 31.0},
		{"inf", "return (1/0)", math.Inf(1)},
		{"bools", "return { true, false }", &LuaTable{Array: []any{true, false}}},
		{"long string", "return [==[\nline ]] still]==]", "line ]] still"},
		{"comment", "-- a comment\nreturn --[[ block ]] 1 -- end", 1.0},
		{"table", `return { ["a"] = 1; b = "x", [false] = { [1] = "one", [2] = "two" }, [3.5] = true, nope = nil }`,
			&LuaTable{Keys: []any{"a", "b", false, 3.5}, Values: []any{1.0, "x", &LuaTable{Array: []any{"one", "two"}}, true}}},
		{"nested empty", "return {{}, {}}", &LuaTable{Array: []any{&LuaTable{}, &LuaTable{}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLuaData([]byte(tc.in))
			if tc.want == nil {
				if err == nil {
					t.Fatalf("parsed %q as %#v", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestParseLuaErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "line 1: want 'return'"},
		{"return", "unexpected end of file"},
		{"return {", "unexpected end of file"},
		{"return { a = 1 b = 2 }", "want ',', ';' or '}'"},
		{"return os.exit()", `unexpected name "os"`},
		{"return \"\\400\"", "out of range"},
		{"return \"abc", "unfinished string"},
		{"return 1 2", "after the value"},
		{"return {\n\n[nil] = 1}", "line 3: nil table key"},
		{"return " + strings.Repeat("{", 200), "nested deeper"},
	} {
		_, err := ParseLuaData([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestParseLuaList(t *testing.T) {
	got, err := ParseLuaList([]byte("item({ key = \"a\" });\nitem({ key = \"b\" });\n"))
	if err != nil || len(got) != 2 || got[1].(*LuaTable).String("key") != "b" {
		t.Fatalf("%#v %v", got, err)
	}
	if _, err := ParseLuaList([]byte("item({});\nprint('x')")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("error %v", err)
	}
}

// luaSerialize writes v the way Prosody's util.serialization does, so
// that the fuzz test can check that what was read reads back the same.
func luaSerialize(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("nil")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case float64:
		switch {
		case math.IsInf(x, 1):
			b.WriteString("(1/0)")
		case math.IsInf(x, -1):
			b.WriteString("(-1/0)")
		case math.IsNaN(x):
			b.WriteString("(0/0)")
		default:
			b.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
		}
	case string:
		b.WriteByte('"')
		for i := 0; i < len(x); i++ {
			c := x[i]
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c < 32 || c >= 127:
				fmt.Fprintf(b, "\\%03d", c)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
	case *LuaTable:
		b.WriteString("{")
		for _, a := range x.Array {
			luaSerialize(b, a)
			b.WriteString(";")
		}
		for i, k := range x.Keys {
			b.WriteString("[")
			luaSerialize(b, k)
			b.WriteString("]=")
			luaSerialize(b, x.Values[i])
			b.WriteString(";")
		}
		b.WriteString("}")
	}
}

// equalLua compares values, NaN equal to NaN.
func equalLua(a, b any) bool {
	if fa, ok := a.(float64); ok {
		fb, ok := b.(float64)
		return ok && (fa == fb || math.IsNaN(fa) && math.IsNaN(fb))
	}
	ta, ok := a.(*LuaTable)
	if !ok {
		return a == b
	}
	tb, ok := b.(*LuaTable)
	if !ok || len(ta.Array) != len(tb.Array) || len(ta.Keys) != len(tb.Keys) {
		return false
	}
	for i := range ta.Array {
		if !equalLua(ta.Array[i], tb.Array[i]) {
			return false
		}
	}
	for i := range ta.Keys {
		if !equalLua(ta.Keys[i], tb.Keys[i]) || !equalLua(ta.Values[i], tb.Values[i]) {
			return false
		}
	}
	return true
}

// FuzzLuaData: the reader never panics, and what it reads, written again
// as Prosody writes it, reads back the same.
func FuzzLuaData(f *testing.F) {
	f.Add([]byte(`return { ["a"] = "\000\255"; [false] = { pending = {} }; [1] = 1.5; };`))
	f.Add([]byte("return [[x]]"))
	f.Add([]byte("return (-1/0)"))
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := ParseLuaData(in)
		if err != nil {
			return
		}
		var b strings.Builder
		b.WriteString("return ")
		luaSerialize(&b, v)
		v2, err := ParseLuaData([]byte(b.String()))
		if err != nil {
			t.Fatalf("%q read, then written as %q, fails: %v", in, b.String(), err)
		}
		if !equalLua(v, v2) {
			t.Fatalf("%q read as %#v, written as %q, reads as %#v", in, v, b.String(), v2)
		}
		// Whatever table it is, the stanza reader must not panic on it.
		_, _ = luaStanza(v, "")
		if tb, ok := v.(*LuaTable); ok {
			_, _ = prosodyRoster(tb, "a@b")
			_, _ = prosodyCredential(tb)
			_, _ = prosodyRoom(tb, "r", "muc.example", "f")
			_, _ = prosodyOffline(tb, "example", testNow)
			_, _ = prosodyPEPItem(tb, "a@b")
			_, _ = prosodyArchived(tb, "a@b")
		}
	})
}

// FuzzLuaList: the list reader never panics.
func FuzzLuaList(f *testing.F) {
	f.Add([]byte("item({ key = \"a\"; name = \"message\"; attr = { xmlns = \"jabber:client\" } });\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		items, err := ParseLuaList(in)
		if err != nil {
			return
		}
		for _, it := range items {
			_, _ = prosodyOffline(it, "example", testNow)
			_, _ = prosodyArchived(it, "a@example")
		}
	})
}
