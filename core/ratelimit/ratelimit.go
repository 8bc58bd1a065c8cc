// Package ratelimit bounds how often something may happen per key, in a
// bounded table: for instance how often a refused request from one source
// address is written to the log.
package ratelimit

import (
	"sync"
	"time"
)

// purgeEvery is how often a full table is scanned for expired keys at most,
// so that a flood of new keys cannot make every call scan the table.
const purgeEvery = time.Second

// Limiter allows one event per key per period and tracks at most a fixed
// number of keys. When the table is full and no key has expired, the keys it
// cannot track share one overflow slot: together they get one event per
// period, so memory and the rate of allowed events both stay bounded. It is
// safe for concurrent use; the zero value is not usable, use New.
type Limiter[K comparable] struct {
	every time.Duration
	max   int

	mu        sync.Mutex
	keys      map[K]slot
	overflow  slot
	lastPurge time.Time
}

type slot struct {
	last       time.Time // when the last event was allowed; zero: never
	suppressed uint64    // events held back since
}

// New returns a Limiter allowing one event per key per every, tracking at
// most size keys (at least 1).
func New[K comparable](every time.Duration, size int) *Limiter[K] {
	return &Limiter[K]{every: every, max: max(size, 1), keys: make(map[K]slot)}
}

// Decision is the answer of Allow.
type Decision struct {
	// OK is true when the event may go through.
	OK bool
	// Suppressed counts the events of the key (or of the overflow slot)
	// held back since the last one allowed; set when OK.
	Suppressed uint64
	// Overflow is true when the table was full and the key shares the
	// overflow slot with every other key it could not track.
	Overflow bool
}

// Allow decides whether an event for key at now may go through.
func (l *Limiter[K]) Allow(key K, now time.Time) Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.keys[key]
	if !ok && len(l.keys) >= l.max && now.Sub(l.lastPurge) >= purgeEvery {
		l.lastPurge = now
		for k, v := range l.keys {
			if now.Sub(v.last) >= l.every {
				delete(l.keys, k)
			}
		}
	}
	if !ok && len(l.keys) >= l.max {
		d := l.overflow.allow(now, l.every)
		d.Overflow = true
		return d
	}
	d := s.allow(now, l.every)
	l.keys[key] = s
	return d
}

func (s *slot) allow(now time.Time, every time.Duration) Decision {
	if !s.last.IsZero() && now.Sub(s.last) < every {
		s.suppressed++
		return Decision{}
	}
	d := Decision{OK: true, Suppressed: s.suppressed}
	s.last, s.suppressed = now, 0
	return d
}

// Len returns how many keys the table tracks.
func (l *Limiter[K]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}
