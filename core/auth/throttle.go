package auth

import (
	"net"
	"strings"
	"sync"
	"time"
)

// throttlePolicy is how failed logins on one key (a user name or a client
// address) are slowed: the first free failures cost nothing, each further
// one delays the next attempt (doubling), and from lock failures on,
// attempts are refused for a lockout that doubles with every failure
// after it expires.
type throttlePolicy struct {
	free, lock int
	delay      time.Duration
	maxDelay   time.Duration
	lockout    time.Duration
	maxLockout time.Duration
}

// Throttle policies. Addresses get more room than user names because many
// people may share one address (NAT, a proxy).
var (
	userPolicy = throttlePolicy{free: 3, lock: 5, delay: time.Second, maxDelay: 4 * time.Second, lockout: 30 * time.Second, maxLockout: 15 * time.Minute}
	addrPolicy = throttlePolicy{free: 10, lock: 20, delay: time.Second, maxDelay: 4 * time.Second, lockout: 30 * time.Second, maxLockout: 15 * time.Minute}
)

// Throttle limits.
const (
	// throttleForget is how long after its last failure a key is forgotten.
	throttleForget = time.Hour
	// maxThrottleKeys bounds the memory of the throttle.
	maxThrottleKeys = 10000
)

type throttleKey struct {
	name   string
	policy *throttlePolicy
}

func userKey(name string) throttleKey {
	return throttleKey{name: "user:" + strings.ToLower(name), policy: &userPolicy}
}

// addrKey groups IPv6 clients by /64, which one host can fill at will.
func addrKey(client string) throttleKey {
	if ip := net.ParseIP(client); ip != nil && ip.To4() == nil {
		client = ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return throttleKey{name: "addr:" + client, policy: &addrPolicy}
}

type throttleEntry struct {
	failures int
	last     time.Time
	until    time.Time // refused until then
}

// throttle counts failed logins per key. It is safe for concurrent use and
// holds no goroutine; the caller passes the time.
type throttle struct {
	mu      sync.Mutex
	entries map[string]*throttleEntry
}

func newThrottle() *throttle { return &throttle{entries: map[string]*throttleEntry{}} }

// ticket is one recorded attempt, for taking it back.
type ticket struct {
	keys        []throttleKey
	prev, until []time.Time // each key's lock before and after the attempt
}

// attempt records a login attempt on keys as a failure up front, so
// parallel attempts cannot all slip through before the first one fails;
// succeeded takes it back. It returns how long the attempt must wait
// before the password is checked (delay), or, when it is refused, how long
// until another may be tried (retryAfter; nothing is recorded then), and
// the lockout this attempt starts should it fail (locked).
func (t *throttle) attempt(now time.Time, keys ...throttleKey) (tk ticket, delay, retryAfter, locked time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if e := t.live(k.name, now); e != nil && now.Before(e.until) {
			retryAfter = max(retryAfter, e.until.Sub(now))
		}
	}
	if retryAfter > 0 {
		return ticket{}, 0, retryAfter, 0
	}
	tk = ticket{keys: keys}
	for _, k := range keys {
		e := t.live(k.name, now)
		if e == nil {
			t.makeRoom(now)
			e = &throttleEntry{}
			t.entries[k.name] = e
		}
		p := k.policy
		if n := e.failures - p.free; n >= 0 {
			d := p.maxDelay
			if n < 20 {
				d = min(p.delay<<n, p.maxDelay)
			}
			delay = max(delay, d)
		}
		tk.prev = append(tk.prev, e.until)
		e.failures++
		e.last = now
		if n := e.failures - p.lock; n >= 0 {
			d := p.maxLockout
			if n < 20 {
				d = min(p.lockout<<n, p.maxLockout)
			}
			e.until = now.Add(d)
			locked = max(locked, d)
		}
		tk.until = append(tk.until, e.until)
	}
	return tk, delay, 0, locked
}

// succeeded takes back the attempt of a login that succeeded: the user's
// failures are cleared, other keys lose this attempt (and the lock it
// started).
func (t *throttle) succeeded(tk ticket) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, k := range tk.keys {
		e := t.entries[k.name]
		if e == nil {
			continue
		}
		if k.policy == &userPolicy {
			delete(t.entries, k.name)
			continue
		}
		e.failures--
		if e.until.Equal(tk.until[i]) {
			e.until = tk.prev[i]
		}
		if e.failures <= 0 {
			delete(t.entries, k.name)
		}
	}
}

// live returns the entry of name unless it is forgotten (and drops it).
func (t *throttle) live(name string, now time.Time) *throttleEntry {
	e := t.entries[name]
	if e != nil && now.Sub(e.last) > throttleForget && !now.Before(e.until) {
		delete(t.entries, name)
		return nil
	}
	return e
}

// makeRoom keeps the table under maxThrottleKeys: forgotten entries go
// first, then the one whose last failure is oldest.
func (t *throttle) makeRoom(now time.Time) {
	if len(t.entries) < maxThrottleKeys {
		return
	}
	var oldest string
	for name, e := range t.entries {
		if now.Sub(e.last) > throttleForget && !now.Before(e.until) {
			delete(t.entries, name)
			continue
		}
		if oldest == "" || e.last.Before(t.entries[oldest].last) {
			oldest = name
		}
	}
	if len(t.entries) >= maxThrottleKeys && oldest != "" {
		delete(t.entries, oldest)
	}
}
