package index

import (
	"fmt"
	"sync"
	"time"
)

// Timestamp is a hybrid logical clock reading: the upper 48 bits are Unix
// milliseconds, the lower 16 bits a logical counter. Ordering Timestamps as
// integers orders events causally: a node never issues a Timestamp at or
// below one it has already issued or observed, so a node whose wall clock
// lags cannot make its later write lose to an earlier write it has seen.
type Timestamp uint64

const logicalBits = 16

// MakeTimestamp builds a Timestamp from a wall-clock time and a counter.
func MakeTimestamp(t time.Time, logical uint16) Timestamp {
	return Timestamp(uint64(t.UnixMilli())<<logicalBits | uint64(logical))
}

// Time is the physical part of t.
func (t Timestamp) Time() time.Time {
	return time.UnixMilli(int64(t >> logicalBits)).UTC()
}

// Logical is the counter part of t.
func (t Timestamp) Logical() uint16 { return uint16(t) }

func (t Timestamp) String() string {
	return fmt.Sprintf("%s+%d", t.Time().Format(time.RFC3339Nano), t.Logical())
}

// Clock issues hybrid logical clock Timestamps. It is safe for concurrent
// use.
type Clock struct {
	now func() time.Time

	mu   sync.Mutex // guards the following fields
	last Timestamp
}

// NewClock returns a Clock reading wall time from now (time.Now if nil).
func NewClock(now func() time.Time) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{now: now}
}

// Now returns a Timestamp strictly greater than every Timestamp this clock
// has issued or observed.
func (c *Clock) Now() Timestamp {
	wall := MakeTimestamp(c.now(), 0)
	c.mu.Lock()
	defer c.mu.Unlock()
	if wall > c.last {
		c.last = wall
	} else {
		// The counter overflowing into the millisecond bits is harmless: it
		// only makes the clock run slightly ahead of the wall.
		c.last++
	}
	return c.last
}

// Peek returns the latest Timestamp issued or observed, without issuing a
// new one.
func (c *Clock) Peek() Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Observe folds in a Timestamp seen from elsewhere (a record read or
// received), so every later Now is above it.
func (c *Clock) Observe(t Timestamp) {
	c.mu.Lock()
	if t > c.last {
		c.last = t
	}
	c.mu.Unlock()
}
