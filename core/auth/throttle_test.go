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
	if e := th.entries[a.name]; e == nil || e.failures != 4 || !e.until.IsZero() {
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
	if n := len(th.entries); n > maxThrottleKeys {
		t.Fatalf("%d entries", n)
	}
	if _, ok := th.entries[addrKey("10.0.0.0").name]; ok {
		t.Fatal("oldest entry kept")
	}
	if _, ok := th.entries[addrKey(fmt.Sprintf("10.0.%d.%d", (maxThrottleKeys+49)/256, (maxThrottleKeys+49)%256)).name]; !ok {
		t.Fatal("newest entry dropped")
	}
}
