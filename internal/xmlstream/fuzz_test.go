package xmlstream

import "testing"

// FuzzParser feeds a stream in two parts split at a fuzzed point. It must
// never panic, and the split must not change the outcome.
func FuzzParser(f *testing.F) {
	for i, s := range streamSamples {
		f.Add([]byte(s), uint(i*13))
	}
	f.Add([]byte(c2sHeader+`<a b='&#x;'/>`), uint(3))
	f.Fuzz(func(t *testing.T, data []byte, split uint) {
		at := int(split % uint(len(data)+1))
		whole := joinRecords(parseChunks(data))
		if got := joinRecords(parseChunks(data[:at], data[at:])); got != whole {
			t.Fatalf("split at %d:\n got %s\nwant %s", at, got, whole)
		}
		checkRoundTrip(t, data)
	})
}

// checkRoundTrip serializes every stanza of data and parses it back.
func checkRoundTrip(t *testing.T, data []byte) {
	p := NewParser(DefaultLimits())
	p.Feed(data)
	for {
		ev, err := p.Next()
		if err != nil {
			return
		}
		if ev.Kind != EventElement {
			continue
		}
		def := p.DefaultNS()
		for _, raw := range []bool{true, false} {
			if !raw {
				dropAllRaw(ev.Elem)
			}
			out := ev.Elem.AppendXML(nil, def)
			q := NewParser(DefaultLimits())
			q.Feed([]byte("<s xmlns='" + string(AppendEscapedAttr(nil, def)) + "'>"))
			q.Feed(out)
			if _, err := q.Next(); err != nil {
				t.Fatalf("reparse header: %v", err)
			}
			back, err := q.Next()
			if err != nil || dump(back.Elem) != dump(ev.Elem) {
				t.Fatalf("raw=%v round trip of %s\nserialized %s\nerr %v", raw, dump(ev.Elem), out, err)
			}
		}
	}
}
