package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Changed lists the keys whose values differ between a and b, as they are
// written in the file ("log.level", "tls.cert_file"): what a reload
// changes. A section that is a list or a table (component.external,
// s2s.hosts) is one key.
func Changed(a, b Config) []string {
	var out []string
	changed(reflect.ValueOf(a), reflect.ValueOf(b), "", &out)
	return out
}

func changed(a, b reflect.Value, prefix string, out *[]string) {
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		key := prefix + name
		av, bv := a.Field(i), b.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type.PkgPath() == t.PkgPath() {
			changed(av, bv, key+".", out)
			continue
		}
		if !reflect.DeepEqual(av.Interface(), bv.Interface()) {
			*out = append(*out, key)
		}
	}
}

// Value returns the value of key ("limits.c2s_rate", as Changed names
// keys) in c, for logs; nil when there is no such key.
func Value(c Config, key string) any {
	v := reflect.ValueOf(c)
	for part := range strings.SplitSeq(key, ".") {
		if v.Kind() != reflect.Struct {
			return nil
		}
		t, found := v.Type(), false
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if f.IsExported() && name == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return nil
		}
	}
	if d, ok := v.Interface().(Duration); ok {
		return time.Duration(d).String()
	}
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return s.String()
	}
	return v.Interface()
}
