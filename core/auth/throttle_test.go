package auth

import (
	"fmt"
	"testing"
	"time"
)

func TestThrottleDelaysThenLocksWithGrowingLockouts(t *testing.T) {
	th := newThrottle()
	now := time.Unix(1_800_000_000, 0)
	u, a := userKey("Alice"), addrKey("192.0.2.7")
	type step struct {
		delay, retry, locked time.Duration
	}
	var got []step
	for i := 0; i < 6; i++ {
		_, d, r, l := th.attempt(now, u, a)
		got = append(got, step{d, r, l})
	}
	want := []step{{}, {}, {}, {delay: time.Second}, {delay: 2 * time.Second, locked: 30 * time.Second}, {retry: 30 * time.Second}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	// The user name is case-insensitive for the throttle.
	if _, _, r, _ := th.attempt(now.Add(10*time.Second), userKey("ALICE")); r != 20*time.Second {
		t.Fatalf("retry for ALICE = %v", r)
	}
	// After the lockout one more failure locks for twice as long.
	now = now.Add(30 * time.Second)
	_, d, r, l := th.attempt(now, u, a)
	if d != 4*time.Second || r != 0 || l != time.Minute {
		t.Fatalf("after lockout: delay %v retry %v locked %v", d, r, l)
	}
	// Lockouts stop growing at the maximum.
	for i := 0; i < 30; i++ {
		now = now.Add(userPolicy.maxLockout)
		_, _, _, l = th.attempt(now, u)
	}
	if l != userPolicy.maxLockout {
		t.Fatalf("lockout grew to %v", l)
	}
	// An hour after the last failure, and once unlocked, all is forgotten.
	now = now.Add(userPolicy.maxLockout + throttleForget + time.Second)
	if _, d, r, l := th.attempt(now, u); d != 0 || r != 0 || l != 0 {
		t.Fatalf("not forgotten: %v %v %v", d, r, l)
	}
}

func TestThrottleSuccessTakesBackTheAttempt(t *testing.T) {
	th := newThrottle()
	now := time.Unix(1_800_000_000, 0)
	u, a := userKey("bob"), addrKey("2001:db8::1")
	for i := 0; i < 4; i++ {
		th.attempt(now, u, a)
	}
	tk, d, _, l := th.attempt(now, u, a) // would lock if it failed
	if d != 2*time.Second || l == 0 {
		t.Fatalf("fifth attempt: delay %v locked %v", d, l)
	}
	th.succeeded(tk)
	if _, d, r, _ := th.attempt(now, u); d != 0 || r != 0 {
		t.Fatalf("user not cleared: delay %v retry %v", d, r)
	}
	// The address kept its four earlier failures, not the fifth.
	if e := th.tables[classAddr][a.name]; e == nil || e.failures != 4 || !e.until.IsZero() {
		t.Fatalf("address entry %+v", e)
	}
	// IPv6 clients are counted per /64.
	if addrKey("2001:db8::ffff").name != a.name || addrKey("2001:db8:0:1::1").name == a.name {
		t.Fatal("IPv6 addresses not grouped by /64")
	}
}

func TestThrottleTableIsBounded(t *testing.T) {
	th := newThrottle()
	now := time.Unix(1_800_000_000, 0)
	for i := 0; i < maxThrottleKeys+50; i++ {
		th.attempt(now.Add(time.Duration(i)*time.Millisecond), addrKey(fmt.Sprintf("10.0.%d.%d", i/256, i%256)))
	}
	if n := len(th.tables[classAddr]); n > maxThrottleKeys {
		t.Fatalf("%d entries", n)
	}
	// Live entries are never evicted: the first address keeps its count,
	// the newcomers share the overflow entry.
	if e := th.tables[classAddr][addrKey("10.0.0.0").name]; e == nil || e.failures != 1 {
		t.Fatalf("oldest live entry = %+v", e)
	}
	if o := th.overflow[classAddr]; o == nil || o.failures != addrPolicy.lock {
		t.Fatalf("overflow entry = %+v, want locked after %d failures", o, addrPolicy.lock)
	}
	if _, _, r, _ := th.attempt(now.Add(11*time.Second), addrKey("203.0.113.9")); r == 0 {
		t.Fatal("a newcomer while the table is full is not held by the locked overflow entry")
	}
	// Once forgotten, entries make room again.
	later := now.Add(throttleForget + time.Hour)
	th.attempt(later, addrKey("192.0.2.1"))
	if e := th.tables[classAddr][addrKey("192.0.2.1").name]; e == nil || len(th.tables[classAddr]) != 1 {
		t.Fatalf("after forgetting: %d entries, new entry %+v", len(th.tables[classAddr]), e)
	}
}

// Flooding the throttle from thousands of addresses with invented names
// (issue 10: 10,100 failures cleared a lockout) leaves a locked user locked.
func TestThrottleFloodCannotUnlockAUser(t *testing.T) {
	th := newThrottle()
	now := time.Unix(1_800_000_000, 0)
	alice, home := userKey("alice"), addrKey("192.0.2.7")
	for i := 0; i < userPolicy.lock; i++ {
		th.attempt(now, alice, home)
	}
	if _, _, r, _ := th.attempt(now, alice, home); r == 0 {
		t.Fatal("alice is not locked after her failures")
	}
	for i := 0; i < 2*maxThrottleKeys+100; i++ {
		at := now.Add(time.Duration(i) * time.Microsecond)
		th.attempt(at, addrKey(fmt.Sprintf("127.%d.%d.%d", i>>16&255, i>>8&255, i&255)), nameKey(fmt.Sprintf("nobody%d", i)))
	}
	if _, _, r, _ := th.attempt(now.Add(time.Second), alice, addrKey("198.51.100.1")); r == 0 {
		t.Fatal("the flood unlocked alice")
	}
	for c := range th.tables {
		if n := len(th.tables[c]); n > maxThrottleKeys {
			t.Errorf("table %d holds %d entries", c, n)
		}
	}
}

// A name that is no user's gets the same delays and the same 429 as a
// user's name, so the throttle does not tell which names exist.
func TestThrottleTreatsUnknownNamesLikeUsers(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	run := func(k throttleKey) string {
		th := newThrottle()
		var steps []string
		for i := 0; i < userPolicy.lock+1; i++ {
			_, d, r, l := th.attempt(now, k, addrKey(fmt.Sprintf("192.0.2.%d", i)))
			steps = append(steps, fmt.Sprint(d, r, l))
		}
		return fmt.Sprint(steps)
	}
	if known, unknown := run(userKey("alice")), run(nameKey("mallory")); known != unknown {
		t.Fatalf("known name %s, unknown name %s", known, unknown)
	}
}
