// Package clock gives the emulators a notion of "now" that tests control.
//
// Device behaviour (upgrade reboots), message visibility and delays follow a
// Clock, so a simulated night takes milliseconds: the test calls Advance.
// Protocol checks that the real SDKs drive with the machine's time (signature
// timestamps, Date headers, STS expiry) use Real, never a simulated clock.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

// Real is the machine's clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Sim is a clock that only moves when told to. It is safe for concurrent use.
type Sim struct {
	mu      sync.Mutex
	now     time.Time
	changed chan struct{}
}

// NewSim returns a simulated clock set to start.
func NewSim(start time.Time) *Sim {
	return &Sim{now: start, changed: make(chan struct{})}
}

// Now returns the simulated time.
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// Advance moves the clock forward by d (a negative d is ignored: time never
// runs backwards) and wakes everything waiting on Changed.
func (s *Sim) Advance(d time.Duration) time.Time {
	if d < 0 {
		d = 0
	}
	s.mu.Lock()
	s.now = s.now.Add(d)
	now := s.now
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return now
}

// Set moves the clock to t if t is later than the current time.
func (s *Sim) Set(t time.Time) time.Time {
	return s.Advance(t.Sub(s.Now()))
}

// Changed returns a channel that is closed the next time the clock moves.
// Long polls use it to notice that delayed messages became visible.
func (s *Sim) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Changed returns a channel that is closed when c moves, or nil (never ready)
// when c cannot tell, as with Real, whose time moves on its own.
func Changed(c Clock) <-chan struct{} {
	if s, ok := c.(*Sim); ok {
		return s.Changed()
	}
	return nil
}
