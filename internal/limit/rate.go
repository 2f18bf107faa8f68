package limit

import "time"

// Rate shapes what one connection reads: Bytes a second, with Burst
// bytes allowed at once. A zero Rate shapes nothing.
type Rate struct {
	Bytes int
	Burst int
}

// Bucket is one connection's allowance under a Rate. It is not safe for
// concurrent use: a connection has one reader at a time.
type Bucket struct {
	r      Rate
	tokens float64
	last   time.Time
}

// NewBucket returns a full bucket for r.
func NewBucket(r Rate, now time.Time) Bucket {
	if r.Burst < r.Bytes {
		r.Burst = r.Bytes
	}
	return Bucket{r: r, tokens: float64(r.Burst), last: now}
}

// Take records n bytes read at now and returns how long the reader must
// pause before reading again to stay within the rate.
func (b *Bucket) Take(n int, now time.Time) time.Duration {
	if b.r.Bytes <= 0 {
		return 0
	}
	b.tokens = min(float64(b.r.Burst), b.tokens+now.Sub(b.last).Seconds()*float64(b.r.Bytes))
	b.last = now
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / float64(b.r.Bytes) * float64(time.Second))
}

// Rate returns the rate the bucket shapes to.
func (b *Bucket) Rate() Rate { return b.r }
