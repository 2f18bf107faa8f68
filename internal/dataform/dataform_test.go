package dataform

import (
	"slices"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

func parse(t testing.TB, s string) *xmlstream.Element {
	t.Helper()
	el, err := xmlstream.ParseStanza([]byte(s), NS)
	if err != nil {
		t.Fatal(err)
	}
	return el
}

func TestParseAndBuild(t *testing.T) {
	f := Form{Type: TypeForm, FormType: "urn:example", Title: "T", Instructions: "Fill <it> in"}
	f.Add(Field{Var: "b", Type: Boolean, Label: "A flag", Required: true, Values: []string{"1"}})
	f.Add(Field{Var: "l", Type: ListMulti, Values: []string{"x", "y"}, Options: []Option{{Label: "X", Value: "x"}, {Value: "y"}}})
	f.Add(Field{Type: Fixed, Values: []string{"a note"}})
	el := f.Element()
	got, err := Parse(parse(t, el.String()))
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != TypeForm || got.FormType != "urn:example" || got.Title != "T" || got.Instructions != "Fill <it> in" || len(got.Fields) != 3 {
		t.Fatalf("round trip: %+v", got)
	}
	if l := got.Field("l"); l == nil || !slices.Equal(l.Values, []string{"x", "y"}) || len(l.Options) != 2 || l.Options[0].Label != "X" {
		t.Fatalf("list field: %+v", l)
	}
	if b := got.Field("b"); b.Value() != "1" || b.Type != Boolean || b.Label != "A flag" || !b.Required {
		t.Fatalf("boolean field: %+v", b)
	}
	if got.Field("l").Required {
		t.Fatal("a field not required came back required")
	}
	if got.Field("missing") != nil || (&Field{}).Value() != "" {
		t.Fatal("absent fields")
	}
	if _, ok := Find(parse(t, "<m xmlns='jabber:client'>"+el.String()+"</m>"), "urn:example"); !ok {
		t.Fatal("Find missed the form")
	}
	if _, ok := Find(parse(t, "<m xmlns='jabber:client'>"+el.String()+"</m>"), "urn:other"); ok {
		t.Fatal("Find matched another FORM_TYPE")
	}
}

func TestParseRefuses(t *testing.T) {
	for _, s := range []string{
		"<x xmlns='jabber:x:data'/>",                                                  // no type
		"<x xmlns='jabber:x:data' type='weird'/>",                                     // unknown type
		"<x xmlns='jabber:x:data' type='submit'><field var='a'/><field var='a'/></x>", // a field twice
		"<y xmlns='jabber:x:data' type='submit'/>",
		"<x xmlns='urn:other' type='submit'/>",
	} {
		if _, err := Parse(parse(t, s)); err == nil {
			t.Errorf("accepted %s", s)
		}
	}
	if _, err := Parse(nil); err == nil {
		t.Error("accepted nil")
	}
}

func TestValues(t *testing.T) {
	for v, want := range map[string]bool{"1": true, "true": true, "0": false, "false": false} {
		if got, err := Bool(v); err != nil || got != want {
			t.Errorf("Bool(%q) = %v, %v", v, got, err)
		}
	}
	for _, v := range []string{"", "yes", "TRUE"} {
		if _, err := Bool(v); err == nil {
			t.Errorf("Bool(%q) accepted", v)
		}
	}
	if FormatBool(true) != "1" || FormatBool(false) != "0" {
		t.Error("FormatBool")
	}
	if n, err := Int("42"); err != nil || n != 42 {
		t.Error("Int")
	}
}

// FuzzParse: whatever a peer sends, parsing neither panics nor yields a
// form that does not survive being written and read again.
func FuzzParse(f *testing.F) {
	f.Add("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:x</value></field><field var='a' type='list-multi'><value>1</value><value>2</value><option label='o'><value>1</value></option></field></x>")
	f.Add("<x xmlns='jabber:x:data' type='form'><title>t</title><instructions>i</instructions><field type='fixed'><value>v</value></field></x>")
	f.Fuzz(func(t *testing.T, s string) {
		el, err := xmlstream.ParseStanza([]byte(s), NS)
		if err != nil {
			return
		}
		form, err := Parse(el)
		if err != nil {
			return
		}
		again, err := Parse(parse(t, form.Element().String()))
		if err != nil {
			t.Fatalf("a parsed form does not parse once written: %v\n%s", err, form.Element())
		}
		a, b := form.Element().String(), again.Element().String()
		if a != b {
			t.Fatalf("round trip changed the form:\n%s\n%s", a, b)
		}
	})
}
