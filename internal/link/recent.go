package link

// handedWindow is how many sessions of lost links a service remembers
// the handed-on messages of, and how many counts it keeps for sessions
// it handed nothing on from (yet).
const handedWindow = 1 << 12

// recent is a map that keeps its last n keys: the oldest goes when a new
// one comes. Not safe for concurrent use.
type recent[V any] struct {
	m    map[string]V
	ring []string
	next int
}

func (r *recent[V]) init(n int) {
	r.m = make(map[string]V)
	r.ring = make([]string, n)
}

func (r *recent[V]) get(k string) (V, bool) {
	v, ok := r.m[k]
	return v, ok
}

// put sets k to v; a new key may push the oldest out.
func (r *recent[V]) put(k string, v V) {
	if _, ok := r.m[k]; ok {
		r.m[k] = v
		return
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.m, old)
	}
	r.ring[r.next] = k
	r.next = (r.next + 1) % len(r.ring)
	r.m[k] = v
}
