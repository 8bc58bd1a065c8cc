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
	// maxThrottleKeys bounds each bounded table of the throttle (typed user
	// names that are no user's, and client addresses).
	maxThrottleKeys = 10000
	// purgeEvery is how often a full table is scanned for forgotten entries
	// at most, so a flood cannot make every attempt scan the table.
	purgeEvery = time.Second
)

// keyClass says which table of the throttle a key lives in. The tables
// are apart, so filling one (with addresses or invented names) can never
// push out the state of another, and entries of configured users are never
// evicted at all.
type keyClass int

const (
	classUser keyClass = iota // configured user names: bounded by the config
	className                 // typed names that are no user's: bounded
	classAddr                 // client addresses: bounded
	numClasses
)

type throttleKey struct {
	name   string
	class  keyClass
	policy *throttlePolicy
}

// userKey is the key of a configured user's name.
func userKey(name string) throttleKey {
	return throttleKey{name: "user:" + strings.ToLower(name), class: classUser, policy: &userPolicy}
}

// nameKey is the key of a typed name that is no user's: it is counted,
// delayed and locked exactly like a user's, so the answers do not tell
// which names exist.
func nameKey(name string) throttleKey {
	return throttleKey{name: "user:" + strings.ToLower(name), class: className, policy: &userPolicy}
}

// addrKey groups IPv6 clients by /64, which one host can fill at will.
func addrKey(client string) throttleKey {
	if ip := net.ParseIP(client); ip != nil && ip.To4() == nil {
		client = ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return throttleKey{name: "addr:" + client, class: classAddr, policy: &addrPolicy}
}

type throttleEntry struct {
	failures int
	last     time.Time
	until    time.Time // refused until then
}

// throttle counts failed logins per key. It is safe for concurrent use and
// holds no goroutine; the caller passes the time.
//
// Bounds: configured users' entries are limited by the config; the tables
// of invented names and of addresses hold at most maxThrottleKeys entries
// each. Only forgotten entries (no failure for throttleForget and not
// locked) are ever removed to make room; when a table is full of live
// entries, new keys of that class share one overflow entry, which is
// counted and locked like any other. A flood can therefore slow or lock
// out newcomers while it lasts, but never unlock anyone.
type throttle struct {
	mu        sync.Mutex
	tables    [numClasses]map[string]*throttleEntry
	overflow  [numClasses]*throttleEntry
	lastPurge [numClasses]time.Time
}

func newThrottle() *throttle {
	t := &throttle{}
	for i := range t.tables {
		t.tables[i] = map[string]*throttleEntry{}
	}
	return t
}

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
		if e := t.live(k, now); e != nil && now.Before(e.until) {
			retryAfter = max(retryAfter, e.until.Sub(now))
		}
	}
	if retryAfter > 0 {
		return ticket{}, 0, retryAfter, 0
	}
	tk = ticket{keys: keys}
	for _, k := range keys {
		e := t.live(k, now)
		if e == nil {
			e = t.create(k, now)
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
		tab := t.tables[k.class]
		e := tab[k.name]
		if e == nil {
			continue
		}
		if k.class == classUser {
			delete(tab, k.name)
			continue
		}
		e.failures--
		if e.until.Equal(tk.until[i]) {
			e.until = tk.prev[i]
		}
		if e.failures <= 0 {
			delete(tab, k.name)
		}
	}
}

// forgotten reports whether an entry may be dropped: no failure for
// throttleForget and not locked.
func forgotten(e *throttleEntry, now time.Time) bool {
	return now.Sub(e.last) > throttleForget && !now.Before(e.until)
}

// live returns the entry of k (the overflow entry when k's table had no
// room for it) unless it is forgotten (and drops it).
func (t *throttle) live(k throttleKey, now time.Time) *throttleEntry {
	tab := t.tables[k.class]
	e := tab[k.name]
	if e == nil && k.class != classUser && len(tab) >= maxThrottleKeys {
		e = t.overflow[k.class]
	}
	if e != nil && forgotten(e, now) {
		if tab[k.name] == e {
			delete(tab, k.name)
		} else {
			t.overflow[k.class] = nil
		}
		return nil
	}
	return e
}

// create adds an entry for k, or returns its table's overflow entry when
// the table is full of live entries.
func (t *throttle) create(k throttleKey, now time.Time) *throttleEntry {
	tab := t.tables[k.class]
	if k.class != classUser && len(tab) >= maxThrottleKeys && now.Sub(t.lastPurge[k.class]) >= purgeEvery {
		t.lastPurge[k.class] = now
		for name, e := range tab {
			if forgotten(e, now) {
				delete(tab, name)
			}
		}
	}
	if k.class != classUser && len(tab) >= maxThrottleKeys {
		if t.overflow[k.class] == nil {
			t.overflow[k.class] = &throttleEntry{}
		}
		return t.overflow[k.class]
	}
	e := &throttleEntry{}
	tab[k.name] = e
	return e
}
