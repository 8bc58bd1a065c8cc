package api

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/ratelimit"
	"github.com/hbdmon/hbd/core/store"
)

// maxFutureSkew is how far ahead of the daemon's clock a sample may be.
const maxFutureSkew = 10 * time.Minute

// The replay guard remembers every signed batch accepted while its
// signature still verifies: a signature made at t verifies until
// t+protocol.MaxClockSkew (protocol.Verify), so a batch is remembered
// exactly until then, and a replay is never applied twice.
//
// Memory is fixed and each request costs O(1): requests are hashed to
// replayShards shards (one lock each); a shard files an entry in the
// bucket of the second its signature stops verifying (one bucket per
// replayBucketSeconds, in a ring covering the whole window), so a lookup
// reads one map and expiry drops whole buckets. At most MaxReplayEntries
// requests are remembered; beyond, a new batch is refused with 503 (the
// agent keeps it spooled and retries) rather than forgotten.
const (
	// MaxReplayEntries bounds the requests the replay guard remembers:
	// about 7,000 batches/s sustained with the 5-minute window (10,000
	// agents at the default 5 s interval send 2,000/s); about 35 bytes an
	// entry, some 75 MB when full.
	MaxReplayEntries = 1 << 21
	// replayShards spreads the guard's lock.
	replayShards = 16
	// replayBucketSeconds is the expiry granularity: an entry is dropped
	// at most this long after its signature stopped verifying.
	replayBucketSeconds = 10
)

// replaySlots is the ring size: every bucket whose entries may still
// verify (expiries from now to now+2*MaxClockSkew) has its own slot.
var replaySlots = int64(2*protocol.MaxClockSkew/time.Second)/replayBucketSeconds + 2

// replayKey is a request's identity: SHA-256 of the host and signature,
// truncated to 128 bits (fixed size, no collision in practice).
type replayKey [16]byte

// replayMark is what the guard knows of a request.
type replayMark uint8

const (
	replayPending replayMark = iota + 1 // being applied
	replayApplied                       // applied (stored)
)

// replayVerdict is the guard's answer to a new request.
type replayVerdict uint8

const (
	// replayFresh: never seen; the caller applies it and settles the
	// ticket.
	replayFresh replayVerdict = iota
	// replayDuplicate: applied before; answer it as a duplicate.
	replayDuplicate
	// replayBusy: the same request is being applied by another handler
	// right now; refuse it (503), the retry will find it applied or free.
	replayBusy
	// replayFull: the guard cannot remember it (MaxReplayEntries reached,
	// or the daemon's clock went back past the window); refuse it (503).
	replayFull
)

// replayBucket holds the requests whose signatures stop verifying within
// one replayBucketSeconds period.
type replayBucket struct {
	epoch int64 // expiry second / replayBucketSeconds of every entry
	keys  map[replayKey]replayMark
}

// replayShard is one lock's share of the guard.
type replayShard struct {
	mu      sync.Mutex
	buckets []replayBucket // ring of replaySlots, indexed by epoch
	n       int            // entries in buckets
	swept   int64          // epoch of the last expiry pass
	_       [80]byte       // keeps shards' locks on separate cache lines
}

// replayGuard detects batches applied before. The zero value is ready to
// use and remembers at most MaxReplayEntries requests.
type replayGuard struct {
	shards [replayShards]replayShard
	// limit overrides MaxReplayEntries in tests; set before first use.
	limit int
}

// replayTicket is a claimed request: settle it once the request is
// applied or failed.
type replayTicket struct {
	sh    *replayShard
	key   replayKey
	epoch int64
}

// claim checks a verified request signed at signedAt (unix seconds) by
// host with sig, at now (unix seconds, the time Verify used), and on
// replayFresh marks it pending until the ticket is settled. Concurrent
// claims of one request: exactly one is fresh.
func (g *replayGuard) claim(host, sig string, signedAt, now int64) (replayTicket, replayVerdict) {
	key := replayKeyOf(host, sig)
	sh := &g.shards[key[0]%replayShards]
	epoch := (signedAt + int64(protocol.MaxClockSkew/time.Second)) / replayBucketSeconds
	limit := g.limit
	if limit <= 0 {
		limit = MaxReplayEntries
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.buckets == nil {
		sh.buckets = make([]replayBucket, replaySlots)
	}
	sh.expire(now / replayBucketSeconds)
	b := &sh.buckets[epoch%replaySlots]
	if b.keys != nil && b.epoch != epoch {
		if b.epoch > epoch {
			// The slot holds later expiries: the clock went back by more
			// than the window. Refuse rather than forget them.
			return replayTicket{}, replayFull
		}
		sh.n -= len(b.keys) // expired long ago
		b.keys = nil
	}
	switch b.keys[key] {
	case replayApplied:
		return replayTicket{}, replayDuplicate
	case replayPending:
		return replayTicket{}, replayBusy
	}
	if sh.n >= (limit+replayShards-1)/replayShards {
		return replayTicket{}, replayFull
	}
	if b.keys == nil {
		b.epoch, b.keys = epoch, map[replayKey]replayMark{}
	}
	b.keys[key] = replayPending
	sh.n++
	return replayTicket{sh: sh, key: key, epoch: epoch}, replayFresh
}

// replayKeyOf hashes host and the lower-case signature without
// allocating for names and signatures of ordinary length.
func replayKeyOf(host, sig string) replayKey {
	var buf [512]byte
	b := append(append(append(buf[:0], host...), 0), sig...)
	for i, c := range b[len(host)+1:] {
		if 'A' <= c && c <= 'Z' {
			b[len(host)+1+i] = c + ('a' - 'A')
		}
	}
	sum := sha256.Sum256(b)
	var key replayKey
	copy(key[:], sum[:])
	return key
}

// expire drops the buckets whose every signature stopped verifying
// before the epoch cur began, once per epoch. The shard must be locked.
func (sh *replayShard) expire(cur int64) {
	if cur <= sh.swept {
		return
	}
	sh.swept = cur
	for i := range sh.buckets {
		if b := &sh.buckets[i]; b.keys != nil && b.epoch < cur {
			sh.n -= len(b.keys)
			b.keys = nil
		}
	}
}

// settle records the outcome of a claimed request: applied, it answers
// later copies as duplicates until its signature expires; not applied, it
// is forgotten so that a retry may apply it.
func (t replayTicket) settle(applied bool) {
	if t.sh == nil {
		return
	}
	t.sh.mu.Lock()
	defer t.sh.mu.Unlock()
	b := &t.sh.buckets[t.epoch%replaySlots]
	if b.epoch != t.epoch || b.keys[t.key] != replayPending {
		return // expired meanwhile: the signature verifies no more
	}
	if applied {
		b.keys[t.key] = replayApplied
		return
	}
	delete(b.keys, t.key)
	t.sh.n--
}

// len returns how many requests the guard remembers at now (unix
// seconds), once the expired ones are dropped. (Claims drop them too, one
// shard at a time.)
func (g *replayGuard) len(now int64) int {
	n := 0
	for i := range g.shards {
		sh := &g.shards[i]
		sh.mu.Lock()
		sh.expire(now / replayBucketSeconds)
		n += sh.n
		sh.mu.Unlock()
	}
	return n
}

// Logging of refused ingestion requests: at most one line per source
// address per RefusedBatchLogEvery, for at most RefusedBatchLogSources
// addresses at a time (beyond, the untracked ones share one line per
// period).
const (
	RefusedBatchLogEvery   = time.Minute
	RefusedBatchLogSources = 4096
)

// refusalLog rate-limits the log lines of refused ingestion requests per
// source address. The zero value is ready to use.
type refusalLog struct {
	once sync.Once
	lim  *ratelimit.Limiter[netip.Addr]
}

func (r *refusalLog) allow(addr netip.Addr, now time.Time) ratelimit.Decision {
	r.once.Do(func() { r.lim = ratelimit.New[netip.Addr](RefusedBatchLogEvery, RefusedBatchLogSources) })
	return r.lim.Allow(addr, now)
}

// logRefusal logs a refused batch at warn with its source address, unless
// a line for that source was written within RefusedBatchLogEvery.
func (s *Server) logRefusal(req *http.Request, host, reason string, now time.Time) {
	var addr netip.Addr
	if ap, err := netip.ParseAddrPort(req.RemoteAddr); err == nil {
		addr = ap.Addr().Unmap()
	}
	d := s.refusals.allow(addr, now)
	if !d.OK {
		return
	}
	args := []any{"reason", reason, "host", host, "source", addr.String()}
	if d.Suppressed > 0 {
		args = append(args, "suppressed", d.Suppressed)
	}
	if d.Overflow {
		args = append(args, "note", "refusals from too many sources: untracked sources share one line per minute")
	}
	s.log.Warn("sample batch refused", args...)
}

// signedButStale returns how far the batch's signed time is from now
// (positive: ahead) when its signature verifies: protocol.Verify checks the
// time before the signature, and a sender that cannot sign must learn
// nothing about the daemon's clock.
func signedButStale(key []byte, host, tsHeader, sig string, body []byte, now time.Time) (time.Duration, bool) {
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return 0, false
	}
	if !hmac.Equal([]byte(protocol.Sign(key, host, ts, body)), []byte(strings.ToLower(sig))) {
		return 0, false
	}
	return time.Unix(ts, 0).Sub(now), true
}

// skewError is the answer to a signed batch refused for clock skew: what
// is wrong, by how much, and the fix.
func skewError(off time.Duration) string {
	words := off.Round(time.Second).String() + " ahead of"
	if off < 0 {
		words = (-off).Round(time.Second).String() + " behind"
	}
	return fmt.Sprintf("clock skew: the batch is %s hbd's clock (allowed ±%s); fix the host's clock (NTP)", words, protocol.MaxClockSkew)
}

// ingest accepts a signed batch of samples from an agent (see package
// protocol). Nothing of a batch is stored unless every sample is valid.
func (s *Server) ingest(c echo.Context) error {
	req := c.Request()
	host := req.Header.Get(protocol.HeaderHost)
	if !config.ValidHostName(host) {
		return Errorf(http.StatusBadRequest, "%s must name a host", protocol.HeaderHost)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, protocol.MaxBatchBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Errorf(http.StatusRequestEntityTooLarge, "batch larger than %d bytes", protocol.MaxBatchBytes)
		}
		return Errorf(http.StatusBadRequest, "cannot read body")
	}
	var key []byte
	dyn, ok := false, false
	if s.deps.HostKey != nil {
		key, dyn, ok = s.deps.HostKey(host)
	}
	now := time.Now()
	if !ok {
		s.logRefusal(req, host, "unknown host: not in watchhosts, and no enroll_key", now)
		return Errorf(http.StatusUnauthorized, "unknown host or bad signature")
	}
	tsHeader, sig := req.Header.Get(protocol.HeaderTimestamp), req.Header.Get(protocol.HeaderSignature)
	if err := protocol.Verify(key, host, tsHeader, sig, body, now); err != nil {
		if errors.Is(err, protocol.ErrStale) {
			if off, signed := signedButStale(key, host, tsHeader, sig, body, now); signed {
				msg := skewError(off)
				s.logRefusal(req, host, msg, now)
				if s.deps.ClockOffset != nil {
					s.deps.ClockOffset(host, off, true, now)
				}
				return Errorf(http.StatusUnauthorized, "%s", msg)
			}
		}
		s.logRefusal(req, host, "bad signature: the host's key differs from the daemon's", now)
		return Errorf(http.StatusUnauthorized, "unknown host or bad signature")
	}
	// Verify accepted the timestamp, so it parses.
	signedAt, _ := strconv.ParseInt(tsHeader, 10, 64)
	ticket, verdict := s.replays.claim(host, sig, signedAt, now.Unix())
	switch verdict {
	case replayDuplicate:
		// The same signed request again: a retry whose first answer was
		// lost, or a replay. Either way it is already stored.
		return c.JSON(http.StatusOK, map[string]any{"ok": true, "accepted": 0, "duplicate": true, "agent_health": true, "units": s.unitStore() != nil})
	case replayBusy:
		c.Response().Header().Set("Retry-After", "1")
		return Errorf(http.StatusServiceUnavailable, "the same batch is being stored right now; retry")
	case replayFull:
		c.Response().Header().Set("Retry-After", strconv.Itoa(replayBucketSeconds))
		return Errorf(http.StatusServiceUnavailable, "too many recent batches to guard against replays; retry later")
	}
	applied := false
	defer func() { ticket.settle(applied) }()
	out, info, units, err := decodeBatch(body, now)
	if err != nil {
		return err
	}
	ctx := req.Context()
	if _, err := s.deps.Store.EnsureHost(ctx, host, dyn); err != nil {
		return err
	}
	if err := s.deps.Store.AppendSamples(ctx, host, out); err != nil {
		if errors.Is(err, store.ErrTooManySeries) || errors.Is(err, store.ErrTooManyPlugins) {
			return Errorf(http.StatusBadRequest, "%v", err)
		}
		return err
	}
	applied = true
	s.agents.observe(host, out, info, now)
	us := s.unitStore()
	if us != nil && len(units) > 0 {
		// The samples are stored: units that cannot be written now are
		// sent again later (protocol.UnitsEvery), not worth a refusal.
		if err := us.SetUnits(ctx, host, units); err != nil {
			s.log.Warn("cannot store plugin units", "host", host, "error", err)
		}
	}
	// agent_health and units tell the agent this daemon takes the batch's
	// "agent" object (protocol.AgentInfo) and "units" (protocol.Units);
	// older daemons refuse unknown fields.
	return c.JSON(http.StatusOK, map[string]any{"ok": true, "accepted": len(out), "agent_health": true, "units": us != nil})
}

// decodeBatch parses and validates a verified batch body. The common form
// takes protocol.DecodeFlat; anything else (and every refusal's wording)
// comes from encoding/json and protocol.Flatten.
func decodeBatch(body []byte, now time.Time) ([]store.PluginSample, *protocol.AgentInfo, protocol.Units, error) {
	future := float64(now.Add(maxFutureSkew).Unix())
	if flat, ok := protocol.DecodeFlat(body); ok {
		out := make([]store.PluginSample, len(flat))
		for i, smp := range flat {
			if err := protocol.ValidatePlugin(smp.Plugin); err != nil {
				return nil, nil, nil, Errorf(http.StatusBadRequest, "samples[%d]: %v", i, err)
			}
			if smp.Timestamp <= 0 || smp.Timestamp > future {
				return nil, nil, nil, Errorf(http.StatusBadRequest, "samples[%d]: timestamp %v is not a unix time within %s of the server clock", i, smp.Timestamp, maxFutureSkew)
			}
			out[i] = store.PluginSample{Plugin: smp.Plugin, Sample: store.Sample{
				Timestamp: smp.Timestamp, Paths: smp.Paths, Values: smp.Values,
			}}
		}
		return out, nil, nil, nil
	}
	var batch protocol.Batch
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&batch); err != nil {
		return nil, nil, nil, Errorf(http.StatusBadRequest, "invalid batch JSON: %v", err)
	}
	if len(batch.Samples) == 0 {
		return nil, nil, nil, Errorf(http.StatusBadRequest, "batch has no samples")
	}
	if len(batch.Samples) > protocol.MaxBatchSamples {
		return nil, nil, nil, Errorf(http.StatusRequestEntityTooLarge, "batch has %d samples, at most %d allowed", len(batch.Samples), protocol.MaxBatchSamples)
	}
	out := make([]store.PluginSample, 0, len(batch.Samples))
	for i, smp := range batch.Samples {
		if err := protocol.ValidatePlugin(smp.Plugin); err != nil {
			return nil, nil, nil, Errorf(http.StatusBadRequest, "samples[%d]: %v", i, err)
		}
		if smp.Timestamp <= 0 || smp.Timestamp > future {
			return nil, nil, nil, Errorf(http.StatusBadRequest, "samples[%d]: timestamp %v is not a unix time within %s of the server clock", i, smp.Timestamp, maxFutureSkew)
		}
		metrics, err := protocol.Flatten(smp.Data)
		if err != nil {
			return nil, nil, nil, Errorf(http.StatusBadRequest, "samples[%d] (%s): %v", i, smp.Plugin, err)
		}
		ps := store.PluginSample{Plugin: smp.Plugin, Sample: store.Sample{
			Timestamp: smp.Timestamp,
			Paths:     make([]string, len(metrics)),
			Values:    make([]float64, len(metrics)),
		}}
		for j, m := range metrics {
			ps.Paths[j], ps.Values[j] = m.Path, m.Value
		}
		out = append(out, ps)
	}
	var units protocol.Units
	if batch.Units != nil {
		var err error
		if units, err = protocol.CleanUnits(batch.Units); err != nil {
			return nil, nil, nil, Errorf(http.StatusBadRequest, "%v", err)
		}
	}
	return out, batch.Agent, units, nil
}
