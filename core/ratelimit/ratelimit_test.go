package ratelimit

import (
	"testing"
	"time"
)

func TestOneEventPerKeyPerPeriod(t *testing.T) {
	l := New[string](time.Minute, 10)
	t0 := time.Unix(1711234567, 0)
	steps := []struct {
		key        string
		at         time.Duration
		ok         bool
		suppressed uint64
	}{
		{"a", 0, true, 0},
		{"a", time.Second, false, 0},
		{"b", time.Second, true, 0}, // keys are apart
		{"a", 59 * time.Second, false, 0},
		{"a", 60 * time.Second, true, 2}, // two held back since the last line
		{"a", 61 * time.Second, false, 0},
	}
	for i, s := range steps {
		d := l.Allow(s.key, t0.Add(s.at))
		if d.OK != s.ok || d.Suppressed != s.suppressed || d.Overflow {
			t.Errorf("step %d (%s at %v): %+v, want ok=%v suppressed=%d", i, s.key, s.at, d, s.ok, s.suppressed)
		}
	}
}

func TestFullTableSharesAnOverflowSlot(t *testing.T) {
	l := New[int](time.Minute, 3)
	t0 := time.Unix(1711234567, 0)
	for k := range 3 {
		if !l.Allow(k, t0).OK {
			t.Fatalf("key %d refused", k)
		}
	}
	// Full, nothing expired: new keys share one slot.
	if d := l.Allow(100, t0.Add(time.Second)); !d.OK || !d.Overflow {
		t.Fatalf("first untracked key: %+v", d)
	}
	if d := l.Allow(101, t0.Add(2*time.Second)); d.OK || l.Len() != 3 {
		t.Fatalf("second untracked key within the period: %+v, %d keys", d, l.Len())
	}
	// A tracked key keeps its own slot.
	if d := l.Allow(0, t0.Add(3*time.Second)); d.OK || d.Overflow {
		t.Fatalf("tracked key: %+v", d)
	}
	// Once the tracked keys expired, a new key gets its own slot again.
	if d := l.Allow(102, t0.Add(2*time.Minute)); !d.OK || d.Overflow || l.Len() != 1 {
		t.Fatalf("after expiry: %+v, %d keys", d, l.Len())
	}
}
