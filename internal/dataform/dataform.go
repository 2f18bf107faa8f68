// Package dataform reads and writes XEP-0004 data forms, the generic forms
// that room configuration (XEP-0045), voice requests, archive queries
// (XEP-0313), node configuration (XEP-0060) and extended service discovery
// (XEP-0128) carry. It works on xmlstream elements and knows nothing of
// the services that use it.
package dataform

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// NS is the data forms namespace.
const NS = "jabber:x:data"

// Form types (XEP-0004 §3.1).
const (
	TypeForm   = "form"
	TypeSubmit = "submit"
	TypeCancel = "cancel"
	TypeResult = "result"
)

// Field types (XEP-0004 §3.3).
const (
	Boolean     = "boolean"
	Fixed       = "fixed"
	Hidden      = "hidden"
	JIDMulti    = "jid-multi"
	JIDSingle   = "jid-single"
	ListMulti   = "list-multi"
	ListSingle  = "list-single"
	TextMulti   = "text-multi"
	TextPrivate = "text-private"
	TextSingle  = "text-single"
)

// Option is one choice of a list field.
type Option struct {
	Label, Value string
}

// Field is one field of a form. Required marks a field a form asks to
// be filled in (<required/>).
type Field struct {
	Var, Type, Label string
	Required         bool
	Values           []string
	Options          []Option
}

// Value returns the field's first value, "" if it has none.
func (f *Field) Value() string {
	if len(f.Values) == 0 {
		return ""
	}
	return f.Values[0]
}

// Form is a parsed or built data form. FormType is the value of its hidden
// FORM_TYPE field, kept apart from Fields since every user checks it.
type Form struct {
	Type         string
	FormType     string
	Title        string
	Instructions string
	Fields       []Field
}

// Field returns the field named v, or nil.
func (f *Form) Field(v string) *Field {
	for i := range f.Fields {
		if f.Fields[i].Var == v {
			return &f.Fields[i]
		}
	}
	return nil
}

// Add appends a field and returns the form, for building.
func (f *Form) Add(fl Field) *Form {
	f.Fields = append(f.Fields, fl)
	return f
}

// ErrNotForm reports an element that is not a data form.
var ErrNotForm = errors.New("dataform: not a jabber:x:data form")

// Parse reads a <x xmlns='jabber:x:data'/> element. It is strict where a
// careless reading would change a form's meaning: a field named twice is
// an error.
func Parse(x *xmlstream.Element) (Form, error) {
	if x == nil || x.Space != NS || x.Local != "x" {
		return Form{}, ErrNotForm
	}
	f := Form{Type: x.Attr("type")}
	switch f.Type {
	case TypeForm, TypeSubmit, TypeCancel, TypeResult:
	default:
		return Form{}, fmt.Errorf("dataform: form type %q", f.Type)
	}
	seen := map[string]bool{}
	for c := range x.ChildElements {
		if c.Space != NS {
			continue
		}
		switch c.Local {
		case "title":
			f.Title = c.Text()
		case "instructions":
			f.Instructions = c.Text()
		case "field":
			fl := Field{Var: c.Attr("var"), Type: c.Attr("type"), Label: c.Attr("label")}
			for v := range c.ChildElements {
				if v.Space != NS {
					continue
				}
				switch v.Local {
				case "required":
					fl.Required = true
				case "value":
					fl.Values = append(fl.Values, v.Text())
				case "option":
					o := Option{Label: v.Attr("label")}
					if ov := v.Child(NS, "value"); ov != nil {
						o.Value = ov.Text()
					}
					fl.Options = append(fl.Options, o)
				}
			}
			if fl.Var != "" {
				if seen[fl.Var] {
					return Form{}, fmt.Errorf("dataform: field %q given twice", fl.Var)
				}
				seen[fl.Var] = true
			}
			if fl.Var == "FORM_TYPE" {
				f.FormType = fl.Value()
				continue
			}
			f.Fields = append(f.Fields, fl)
		}
	}
	return f, nil
}

// Find returns the first data form child of el with the given FORM_TYPE
// ("" for any form), parsed.
func Find(el *xmlstream.Element, formType string) (Form, bool) {
	for c := range el.ChildElements {
		if c.Space != NS || c.Local != "x" {
			continue
		}
		f, err := Parse(c)
		if err == nil && (formType == "" || f.FormType == formType) {
			return f, true
		}
	}
	return Form{}, false
}

// Element builds the form's XML.
func (f *Form) Element() *xmlstream.Element {
	x := xmlstream.NewElement(NS, "x")
	x.SetAttr("type", f.Type)
	if f.Title != "" {
		x.AddChild(xmlstream.NewElement(NS, "title")).AddText(f.Title)
	}
	if f.Instructions != "" {
		x.AddChild(xmlstream.NewElement(NS, "instructions")).AddText(f.Instructions)
	}
	if f.FormType != "" {
		ft := x.AddChild(xmlstream.NewElement(NS, "field"))
		ft.SetAttr("var", "FORM_TYPE")
		ft.SetAttr("type", Hidden)
		ft.AddChild(xmlstream.NewElement(NS, "value")).AddText(f.FormType)
	}
	for i := range f.Fields {
		fl := &f.Fields[i]
		fe := x.AddChild(xmlstream.NewElement(NS, "field"))
		if fl.Var != "" {
			fe.SetAttr("var", fl.Var)
		}
		if fl.Type != "" {
			fe.SetAttr("type", fl.Type)
		}
		if fl.Label != "" {
			fe.SetAttr("label", fl.Label)
		}
		if fl.Required {
			fe.AddChild(xmlstream.NewElement(NS, "required"))
		}
		for _, o := range fl.Options {
			oe := fe.AddChild(xmlstream.NewElement(NS, "option"))
			if o.Label != "" {
				oe.SetAttr("label", o.Label)
			}
			oe.AddChild(xmlstream.NewElement(NS, "value")).AddText(o.Value)
		}
		for _, v := range fl.Values {
			fe.AddChild(xmlstream.NewElement(NS, "value")).AddText(v)
		}
	}
	return x
}

// Bool reads a boolean field value (XEP-0004 §3.3: "1"/"true", "0"/"false").
func Bool(v string) (bool, error) {
	switch v {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, fmt.Errorf("dataform: %q is not a boolean", v)
}

// FormatBool writes a boolean field value.
func FormatBool(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Int reads a whole-number field value.
func Int(v string) (int, error) {
	return strconv.Atoi(v)
}
