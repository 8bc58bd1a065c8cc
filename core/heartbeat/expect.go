package heartbeat

import (
	"sort"
	"time"
)

// Clock offset reporting (TrackerConfig.OnClock).
const (
	// ClockReportEvery is the longest a host's clock offset goes
	// unreported while its heartbeats arrive.
	ClockReportEvery = 10 * time.Second
	// ClockReportMove is how far the smoothed offset must move from the
	// last report to be reported before ClockReportEvery.
	ClockReportMove = 500 * time.Millisecond
	// clockSamples is how many recent offsets the median is taken over.
	clockSamples = 5
)

// Expectation describes a host the tracker must hear from (Expect).
type Expectation struct {
	// Host is the host name.
	Host string
	// Dynamic is true for hosts registered with an enroll-derived key.
	Dynamic bool
	// LastSeen holds, for each address family the host used before the
	// daemon started (as the daemon persisted it), when its last heartbeat
	// over that family was accepted, or the zero time when that is not
	// known. A family missing from the map was not used.
	LastSeen map[Family]time.Time
	// From is when waiting for the host starts: the later of the daemon's
	// start and the host's addition to the configuration. The zero time
	// means now.
	From time.Time
}

// Expect makes the tracker wait for a host: unless it is heard from within
// its timeout counted from x.From, the sweep declares DOWN each family in
// x.LastSeen it has not heard from, and then the host (a host with no
// family to wait for goes straight to DOWN). Until then a host never heard
// from has the empty state ("waiting"), and its Snapshot exists.
//
// Expect is idempotent: a host already expected keeps its From, and the
// families it already has state for keep it. Call it for every watched
// host when the daemon starts and for hosts added by a reload.
func (t *Tracker) Expect(x Expectation) {
	if !ValidHost(x.Host) {
		return
	}
	from := x.From
	if from.IsZero() {
		from = time.Now()
	}
	sh := t.shardOf(x.Host)
	sh.mu.Lock()
	e := sh.hosts[x.Host]
	if e == nil {
		e = &hostEntry{name: x.Host, dynamic: x.Dynamic}
		sh.hosts[e.name] = e
	}
	sh.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.expected {
		e.expected, e.from = true, from
	}
	e.dynamic = x.Dynamic
	for f, seen := range x.LastSeen {
		i, ok := familyIndex(f)
		if !ok {
			continue
		}
		if c := &e.conns[i]; c.state == "" && !c.persisted {
			c.persisted, c.lastSeen = true, seen
		}
	}
}

// Unexpect stops waiting for host: a host never heard from since it was
// expected is forgotten, one that was heard from is kept and follows the
// usual rules. For instance when watch_dynamic is turned off.
func (t *Tracker) Unexpect(host string) {
	sh := t.shardOf(host)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.hosts[host]
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.heard {
		e.expected = false
	} else {
		delete(sh.hosts, host)
	}
}

// HostSeen is when a host was last heard from over each family (Seen).
type HostSeen struct {
	// Host is the host name.
	Host string
	// Dynamic is true for hosts registered with an enroll-derived key.
	Dynamic bool
	// LastSeen holds, for each family the host uses or used, when its last
	// heartbeat over it was accepted; the zero time when not known.
	LastSeen map[Family]time.Time
}

// Seen returns, for every host that uses or used a family, when it was last
// heard from over each, sorted by name: what the daemon persists so that
// a restart knows which families to wait for.
func (t *Tracker) Seen() []HostSeen {
	var out []HostSeen
	for _, e := range t.entries() {
		e.mu.Lock()
		var hs HostSeen
		for fi := range e.conns {
			c := &e.conns[fi]
			if c.state == "" && !c.persisted {
				continue
			}
			if hs.LastSeen == nil {
				hs = HostSeen{Host: e.name, Dynamic: e.dynamic, LastSeen: make(map[Family]time.Time, 2)}
			}
			hs.LastSeen[families[fi]] = c.lastSeen
		}
		e.mu.Unlock()
		if hs.LastSeen != nil {
			out = append(out, hs)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}

// refuse records a heartbeat that was verified but refused because its send
// time is too far from the daemon's clock: it does not count for liveness,
// but it tells the host's clock offset and why the host is not heard. A
// replay of a heartbeat seen before (accepted or refused) is ignored.
func (t *Tracker) refuse(host []byte, fi int, p *Packet, now time.Time, dynamic bool) {
	e := t.lookupOrCreate(host, dynamic)
	e.mu.Lock()
	c := &e.conns[fi]
	if (c.state != "" && p.Session == c.session && p.Seq <= c.lastSeq) ||
		(p.Session == c.refSession && p.Seq <= c.refSeq) {
		e.mu.Unlock()
		return
	}
	c.refSession, c.refSeq = p.Session, p.Seq
	off := time.Duration(p.SentNanos-now.UnixNano()) + time.Duration(p.RTTMicros)*time.Microsecond/2
	if e.refusedAt.IsZero() {
		// The clock jumped: earlier offsets say nothing about it now.
		e.clock.reset()
	}
	e.clock.add(off)
	e.refusedAt, e.refusedOffset = now, off
	rep := e.clockDue(now, true, off)
	e.mu.Unlock()
	t.reportClock(e, rep)
}

// reason says why the host is not heard from when more is known than
// silence. e.mu must be held.
func (e *hostEntry) reason() string {
	if e.refusedAt.IsZero() {
		return ""
	}
	return skewReason(e.refusedOffset)
}

// skewReason words a clock offset that gets heartbeats refused, e.g.
// "clock 6m12s ahead of hbd".
func skewReason(off time.Duration) string {
	dir := "ahead of"
	if off < 0 {
		dir, off = "behind", -off
	}
	return "clock " + off.Round(time.Second).String() + " " + dir + " hbd"
}

// offset returns the clock offset to show: the refused heartbeat's while
// the host is refused, else the median of the recent ones. e.mu must be
// held.
func (e *hostEntry) offset() (time.Duration, bool) {
	if !e.refusedAt.IsZero() {
		return e.refusedOffset, true
	}
	if e.clock.n == 0 {
		return 0, false
	}
	return e.clock.median(), true
}

// usesFamily reports whether the host has state for, or awaits, any
// family. e.mu must be held.
func (e *hostEntry) usesFamily() bool {
	for i := range e.conns {
		if e.conns[i].state != "" || e.conns[i].persisted {
			return true
		}
	}
	return false
}

// familySets are the possible Change.Families values, shared read-only
// (capacity equals length, so an append by a receiver copies).
var familySets = [4][]Family{nil, {IPv4}, {IPv6}, {IPv4, IPv6}}

// familyList returns the families the host uses or used. e.mu must be held.
func (e *hostEntry) familyList() []Family {
	set := 0
	for i := range e.conns {
		if e.conns[i].state != "" || e.conns[i].persisted {
			set |= 1 << i
		}
	}
	fs := familySets[set]
	return fs[:len(fs):len(fs)]
}

// lastSeen returns when the newest heartbeat of the host was accepted,
// possibly before a restart; zero when never. e.mu must be held.
func (e *hostEntry) lastSeen() time.Time {
	var last time.Time
	for i := range e.conns {
		if c := &e.conns[i]; c.lastSeen.After(last) {
			last = c.lastSeen
		}
	}
	return last
}

// clockEstimate keeps a host's recent clock offsets and what was last
// reported through OnClock.
type clockEstimate struct {
	samples [clockSamples]time.Duration
	n, next int

	seq      uint64 // reports decided so far
	reported bool
	at       time.Time
	offset   time.Duration
	refused  bool
}

func (k *clockEstimate) add(off time.Duration) {
	k.samples[k.next] = off
	k.next = (k.next + 1) % clockSamples
	if k.n < clockSamples {
		k.n++
	}
}

func (k *clockEstimate) reset() { k.n, k.next = 0, 0 }

// median returns the median of the recent offsets (the mean of the middle
// two for an even count); 0 when there are none.
func (k *clockEstimate) median() time.Duration {
	if k.n == 0 {
		return 0
	}
	var v [clockSamples]time.Duration
	copy(v[:], k.samples[:k.n])
	s := v[:k.n]
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// clockReport is one decided OnClock call; seq 0 means none.
type clockReport struct {
	seq     uint64
	offset  time.Duration
	refused bool
	at      time.Time
}

// clockDue decides whether off (with the refusal flag) is to be reported
// now. e.mu must be held.
func (e *hostEntry) clockDue(now time.Time, refused bool, off time.Duration) clockReport {
	k := &e.clock
	if k.reported && k.refused == refused && now.Sub(k.at) < ClockReportEvery &&
		off-k.offset <= ClockReportMove && k.offset-off <= ClockReportMove {
		return clockReport{}
	}
	k.reported, k.refused, k.at, k.offset = true, refused, now, off
	k.seq++
	return clockReport{seq: k.seq, offset: off, refused: refused, at: now}
}

// reportClock delivers a decided report, unless a newer one was delivered
// already. It is called without e.mu.
func (t *Tracker) reportClock(e *hostEntry, r clockReport) {
	if r.seq == 0 || t.onClock == nil {
		return
	}
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	if r.seq > e.clockDelivered {
		e.clockDelivered = r.seq
		t.onClock(e.name, r.offset, r.refused, r.at)
	}
}
