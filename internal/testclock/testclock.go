// Package testclock is the one clock tests inject wherever berth reads the
// time (Now func() time.Time options), so that expiry, leases and retries
// are tested without sleeping. It is safe for concurrent use: a server
// under test reads it while the test moves it.
//
// It is for tests only; nothing outside _test files and test helpers may
// import it.
package testclock

import (
	"sync"
	"time"
)

// Clock is a time that moves only when told to.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock that reads t until it is moved.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d (back when d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}
