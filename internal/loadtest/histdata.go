package loadtest

// HistogramData is a histogram in a form that crosses a process
// boundary: the load processes of a fleet run each record their own, and
// the process that reports adds them up, so that the percentiles are
// those of every sample rather than an average of percentiles.
type HistogramData struct {
	// Buckets are the non-empty buckets as pairs of index and count.
	Buckets [][2]uint64 `json:"b,omitempty"`
	// MaxNs is the largest duration recorded, in nanoseconds.
	MaxNs int64 `json:"max,omitempty"`
}

// Data returns what h recorded. It must not race with Record for an
// exact copy; a concurrent Record is either in it or not.
func (h *Histogram) Data() HistogramData {
	var d HistogramData
	for b := range h.counts {
		if n := h.counts[b].Load(); n > 0 {
			d.Buckets = append(d.Buckets, [2]uint64{uint64(b), n})
		}
	}
	d.MaxNs = h.max.Load()
	return d
}

// Add merges d into h.
func (h *Histogram) Add(d HistogramData) {
	for _, bc := range d.Buckets {
		if bc[0] >= histBuckets {
			continue
		}
		h.counts[bc[0]].Add(bc[1])
		h.n.Add(bc[1])
	}
	for {
		m := h.max.Load()
		if d.MaxNs <= m || h.max.CompareAndSwap(m, d.MaxNs) {
			break
		}
	}
}

// Merge adds what other recorded to h.
func (h *Histogram) Merge(other *Histogram) { h.Add(other.Data()) }
