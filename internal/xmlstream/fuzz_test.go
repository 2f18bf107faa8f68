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
	})
}
