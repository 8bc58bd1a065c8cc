package api

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/protocol"
)

// replaySig is a distinct hex "signature" for request i (the guard only
// needs it to identify the request).
func replaySig(i int) string { return strconv.FormatInt(int64(i), 16) }

// apply claims and applies request i signed at ts, seen at now, and
// returns the verdict.
func apply(g *replayGuard, host string, i int, ts, now int64) replayVerdict {
	t, v := g.claim(host, replaySig(i), ts, now)
	if v == replayFresh {
		t.settle(true)
	}
	return v
}

// Millions of distinct requests at a steady rate: memory stays bounded by
// the window (entries counted), a replay of a recent request is still
// detected at the end, and one whose signature expired is forgotten. The
// guard before issue 12 stopped recording after 200,000 requests.
func TestReplayGuardMillionsOfRequests(t *testing.T) {
	const (
		total  = 2_000_000
		perSec = 2_000 // 10,000 agents at the default 5 s interval
	)
	skew := int64(protocol.MaxClockSkew / time.Second)
	// Entries live until signed time + skew; signed times here are up to
	// 2 s behind now, and buckets are dropped a bucket late at most.
	bound := int((skew + replayBucketSeconds + 1) * perSec)
	var g replayGuard
	start := int64(1_800_000_000)
	now := start
	peak := 0
	for i := range total {
		now = start + int64(i/perSec)
		ts := now - int64(i%3) // agents' clocks differ a little
		if v := apply(&g, "host"+strconv.Itoa(i%10000), i, ts, now); v != replayFresh {
			t.Fatalf("request %d: verdict %d, want fresh", i, v)
		}
		if i%perSec == 0 {
			n := g.len(now)
			peak = max(peak, n)
			if n > bound {
				t.Fatalf("after %d requests the guard holds %d entries, more than the window's %d", i, n, bound)
			}
		}
	}
	if peak < int(skew*perSec) {
		t.Fatalf("peak %d entries: the guard forgot requests within the window (want >= %d)", peak, skew*perSec)
	}
	// A replay of the last request and of one 200 s old: duplicates.
	last, old := total-1, total-1-200*perSec
	for _, i := range []int{last, old} {
		ts := start + int64(i/perSec) - int64(i%3)
		if v := apply(&g, "host"+strconv.Itoa(i%10000), i, ts, now); v != replayDuplicate {
			t.Errorf("replay of request %d (signed %d s ago): verdict %d, want duplicate", i, now-ts, v)
		}
	}
	// The same signature for another host is another request.
	if v := apply(&g, "other", last, now, now); v != replayFresh {
		t.Errorf("another host's request: verdict %d, want fresh", v)
	}
	// Once every signature stopped verifying, everything is forgotten.
	later := now + 2*skew + 2*replayBucketSeconds
	if v := apply(&g, "host0", 0, later, later); v != replayFresh {
		t.Errorf("new request: verdict %d", v)
	}
	if n := g.len(later); n != 1 {
		t.Errorf("%d entries after the window passed, want 1", n)
	}
}

// Expiry follows the signature's own time: a request is remembered for as
// long as its signature verifies (signed time + MaxClockSkew) and no
// longer than a bucket beyond.
func TestReplayGuardExpiresWithTheSignature(t *testing.T) {
	skew := int64(protocol.MaxClockSkew / time.Second)
	var g replayGuard
	now := int64(1_800_000_005)
	ts := now + skew // signed by a clock 5 minutes ahead: verifies until now+2*skew
	if v := apply(&g, "web01", 1, ts, now); v != replayFresh {
		t.Fatal(v)
	}
	for _, at := range []int64{now + skew, now + 2*skew - 1, now + 2*skew} {
		if _, v := g.claim("web01", replaySig(1), ts, at); v != replayDuplicate {
			t.Errorf("at +%ds (signature still verifies): verdict %d, want duplicate", at-now, v)
		}
	}
	// Another request expiring later keeps the shard sweeping.
	after := ts + skew + replayBucketSeconds + 1
	apply(&g, "web01", 2, after, after)
	if n := g.len(after); n != 1 {
		t.Errorf("%d entries once the first signature expired, want 1", n)
	}
	if _, v := g.claim("web01", replaySig(1), ts, after); v != replayFresh {
		t.Errorf("expired request: verdict %d, want it forgotten (fresh)", v)
	}
}

// When the guard is full, new requests are refused (replayFull) and the
// remembered ones are never forgotten to make room: a replay is still a
// duplicate. Room comes back as signatures expire.
func TestReplayGuardFullRefusesRatherThanForgets(t *testing.T) {
	skew := int64(protocol.MaxClockSkew / time.Second)
	g := replayGuard{limit: replayShards * 4}
	now := int64(1_800_000_000)
	fresh, full := 0, 0
	for i := range 1000 {
		switch apply(&g, "web01", i, now, now) {
		case replayFresh:
			fresh++
		case replayFull:
			full++
		default:
			t.Fatalf("request %d: unexpected verdict", i)
		}
	}
	if fresh > g.limit || full == 0 || g.len(now) != fresh {
		t.Fatalf("fresh %d, full %d, entries %d: want at most %d remembered and the rest refused", fresh, full, g.len(now), g.limit)
	}
	dups := 0
	for i := range 1000 {
		if _, v := g.claim("web01", replaySig(i), now, now); v == replayDuplicate {
			dups++
		}
	}
	if dups != fresh {
		t.Errorf("%d of %d applied requests still detected when full", dups, fresh)
	}
	later := now + skew + replayBucketSeconds + 1
	if v := apply(&g, "web01", 5000, later, later); v != replayFresh || g.len(later) != 1 {
		t.Errorf("after expiry: verdict %d, %d entries", v, g.len(later))
	}
}

// A claimed request is pending until settled: a concurrent copy is told to
// retry (never applied twice), a failed one is forgotten so that its retry
// applies it.
func TestReplayGuardPendingAndFailed(t *testing.T) {
	var g replayGuard
	now := int64(1_800_000_000)
	t1, v := g.claim("web01", replaySig(1), now, now)
	if v != replayFresh {
		t.Fatal(v)
	}
	if _, v := g.claim("web01", replaySig(1), now, now); v != replayBusy {
		t.Errorf("copy while pending: verdict %d, want busy", v)
	}
	t1.settle(false)
	if g.len(now) != 0 {
		t.Errorf("failed request still remembered")
	}
	t2, v := g.claim("web01", replaySig(1), now, now)
	if v != replayFresh {
		t.Fatalf("retry after failure: verdict %d", v)
	}
	t2.settle(true)
	if _, v := g.claim("web01", replaySig(1), now, now); v != replayDuplicate {
		t.Errorf("after success: verdict %d, want duplicate", v)
	}
}

// A daemon clock set back by more than the window must not make the guard
// drop entries that will verify again once the clock is right: it
// refuses instead.
func TestReplayGuardClockBackRefuses(t *testing.T) {
	skew := int64(protocol.MaxClockSkew / time.Second)
	var g replayGuard
	now := int64(1_800_000_000)
	apply(&g, "web01", 1, now, now)
	// Back by a whole ring: requests signed then land in request 1's slot.
	back := now - replaySlots*replayBucketSeconds
	if back > now-2*skew {
		t.Fatal("the ring is shorter than the window")
	}
	refused := 0
	for i := 2; i < 5000; i++ {
		if v := apply(&g, "web01", i, back, back); v == replayFull {
			refused++
		}
	}
	if _, v := g.claim("web01", replaySig(1), now, now); v != replayDuplicate {
		t.Errorf("after the clock went back, the earlier request was forgotten (verdict %d)", v)
	}
	if refused == 0 {
		t.Errorf("no request refused in the slots of the later expiries")
	}
}

// BenchmarkReplayGuard measures one claim and settle of a new request with
// 1M requests remembered.
func BenchmarkReplayGuard(b *testing.B) {
	var g replayGuard
	now := int64(1_800_000_000)
	for i := range 1_000_000 {
		apply(&g, "host"+strconv.Itoa(i%10000), i, now-int64(i%200), now)
	}
	sigs := make([]string, 1<<16)
	for i := range sigs {
		sigs[i] = replaySig(2_000_000 + i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t, v := g.claim("host42", sigs[i&(len(sigs)-1)]+strconv.Itoa(i>>16), now, now)
		if v == replayFresh {
			t.settle(true)
		}
	}
	b.ReportMetric(float64(g.len(now)), "entries")
}

// BenchmarkReplayGuardParallel is BenchmarkReplayGuard from every core.
func BenchmarkReplayGuardParallel(b *testing.B) {
	var g replayGuard
	now := int64(1_800_000_000)
	for i := range 1_000_000 {
		apply(&g, "host"+strconv.Itoa(i%10000), i, now-int64(i%200), now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var seq atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(seq.Add(1))
			t, v := g.claim("host42", replaySig(3_000_000+i), now, now)
			if v == replayFresh {
				t.settle(true)
			}
		}
	})
}
