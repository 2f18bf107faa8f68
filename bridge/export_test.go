package bridge

import "time"

// SetLoginClock sets, for a test, the clock by which logins in steps
// expire, and how long a request on a Display step waits for the network
// before the step is shown again. It is called before the bridge serves.
func SetLoginClock(b *Bridge, now func() time.Time, hold time.Duration) {
	b.logins.now, b.logins.hold = now, hold
}
