// Package sender delivers spooled samples to the daemon in signed batches
// (see core/protocol): POST <api_url>/api/0/ingest, oldest first, moving the
// spool cursor only after the daemon answered 200.
//
// What the daemon answers decides what happens to a batch:
//   - 200: committed; the next batch follows at once until the spool is empty.
//   - 400, 413, 422 (the daemon refuses the whole batch for one bad sample
//     or its size): the batch is halved and retried until the sample the
//     daemon will never take stands alone; that one is logged and dropped,
//     so it cannot block the queue, and every other sample is delivered.
//   - 401, 403: the host key is wrong; logged as an error on every attempt,
//     samples keep spooling until it is fixed. When the daemon says the
//     clocks differ by more than protocol.MaxClockSkew ("clock skew: ..."),
//     its answer (by how much, and the fix) is logged at warn instead.
//   - anything else (5xx, 404, 429, network errors, timeouts): kept; with
//     several daemons (Options.URLs) the identical signed batch goes to the
//     next daemon at once (failover); when every daemon failed, retried
//     with exponential backoff starting at the send interval.
//
// With Options.Health set, the first batch of a flush carries the agent's
// own health (protocol.AgentPlugin) at most every HealthEvery, built when
// the batch is: the spool's depth including that batch, the age of its
// oldest sample, the last batch the daemon took and the plugin errors. It
// is never spooled; with nothing spooled it goes out alone. A daemon that
// refuses it (an old daemon's plugin limit) gets the batch again without it.
//
// Several daemons on one database (docs/HA.md): the sender stays with the
// daemon that took the last batch and moves on only when it fails; after
// FailbackAfter on another daemon it tries the first listed again. A
// batch sent without a definite answer is resent as the identical signed
// request, wherever it goes: the daemon that stored it answers it as a
// duplicate, and another daemon stores its samples over the same rows
// (one row per series and timestamp), so it is stored once.
package sender

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/agent/spool"
	"github.com/hbdmon/hbd/core/protocol"
)

// Queue is the sender's view of the spool: records in order, acknowledged
// by Mark.
type Queue interface {
	Peek(maxRecords, maxBytes int) ([][]byte, spool.Mark, error)
	Commit(spool.Mark) error
}

// Errors Flush returns for what only the host's operator can fix.
var (
	// ErrKeyRejected means the daemon does not accept this host's key.
	ErrKeyRejected = errors.New("daemon rejected the host key")
	// ErrClockSkew means the daemon refuses batches because this host's
	// clock is too far from its own.
	ErrClockSkew = errors.New("daemon refused the batch for clock skew")
)

// clockSkewPrefix starts the daemon's answer to a batch refused for clock
// skew (after its signature verified).
const clockSkewPrefix = "clock skew:"

// DefaultTimeout bounds one delivery request of the default client.
const DefaultTimeout = 30 * time.Second

// FailbackAfter is how long the sender stays with a daemon other than the
// first listed before it tries the first again.
const FailbackAfter = 5 * time.Minute

const (
	batchPrefix = `{"samples":[`
	batchSuffix = `]}`
	// healthReserve is the room a batch leaves for the health sample and
	// the agent object (a 256-byte error text is at most 1,536 bytes
	// escaped).
	healthReserve    = 4 << 10
	defaultBackoff   = time.Minute
	maxResponseBytes = 64 << 10
)

// Options configure a Sender. URL, Host, Key and Interval are required.
type Options struct {
	URL string // daemon HTTP base, e.g. http://127.0.0.1:50004
	// URLs lists several daemons' HTTP bases in order of preference,
	// instead of URL; batches fail over between them.
	URLs       []string
	Host       string        // this host's name as the daemon knows it
	Key        []byte        // this host's secret
	Interval   time.Duration // pause between flushes while the daemon answers
	MaxBackoff time.Duration // longest pause after failures; default 1 min
	Client     *http.Client  // default: a client with a 30 s timeout
	Logger     hclog.Logger
	// Now is the clock the signed timestamp is taken from; time.Now when
	// nil. Tests shift it to play a host whose clock is wrong.
	Now func() time.Time
	// Health, when set, returns the agent's plugin error counts for the
	// health sample (see the package documentation); nil sends none.
	Health func() Health
	// HealthEvery is the least time between two health samples the
	// daemon took; default DefaultHealthEvery, negative: every flush.
	HealthEvery time.Duration
	// Units, when set, are the units the agent's plugins declare. They go
	// in the batch's "units" object to a daemon that announced "units"
	// in a 200 answer: in the first batch after that, then every
	// UnitsEvery (see protocol.Units).
	Units protocol.Units
	// UnitsEvery is the least time between two batches carrying the
	// units the daemon took; default protocol.UnitsEvery, negative: every
	// batch.
	UnitsEvery time.Duration
}

// DefaultHealthEvery is how often the agent reports its health by default.
const DefaultHealthEvery = 30 * time.Second

// Health is what only the agent's plugins know of its health.
type Health struct {
	PluginErrors    int64  // failed plugin runs since start
	LastPluginError string // the newest one, "plugin: error"; "" when none
}

// Stater is implemented by queues that can tell their depth
// (*spool.Spool); the health sample's spool figures come from it.
type Stater interface {
	Stats() spool.Stats
}

// Sender drains a Queue to the daemon. Run and Flush must not be called
// concurrently.
type Sender struct {
	q       Queue
	o       Options
	urls    []string // ingestion endpoints, in order of preference
	cur     int      // index in urls of the daemon batches go to
	since   time.Time
	log     hclog.Logger
	failing bool
	// unsure is the last batch sent without a definite answer (a
	// cancelled or failed request, a 5xx): the daemon may have stored it.
	// The same batch is sent again as the identical signed request, which
	// the daemon recognises and answers "duplicate" instead of storing it
	// twice.
	unsure *signed

	lastSend   time.Time // the daemon's last 200
	lastHealth time.Time // the last health sample the daemon took
	// daemonHealth is true once the daemon answered "agent_health": it
	// then takes the batch's "agent" object.
	daemonHealth bool

	units      []byte    // Options.Units encoded; nil when none
	daemonUnit bool      // the daemon answered "units": it takes them
	unitsAt    time.Time // when a daemon last took them
	unitsOff   bool      // a daemon refused a batch only for them: not sent again
	sentUnits  bool      // the last request carried them (a resent one may differ from what was asked)
}

// signed is one signed ingestion request.
type signed struct {
	recs  []byte // the spooled records in the body, joined
	units bool   // the body carries the units
	body  []byte
	ts    int64
	sig   string
}

// resignAfter is how long a signed request may be sent again as it is: well
// inside the daemon's window for signed timestamps (protocol.MaxClockSkew),
// within which it remembers the requests it stored.
const resignAfter = protocol.MaxClockSkew / 2

// New returns a Sender for q.
func New(q Queue, o Options) *Sender {
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = defaultBackoff
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: DefaultTimeout}
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HealthEvery == 0 {
		o.HealthEvery = DefaultHealthEvery
	}
	if o.UnitsEvery == 0 {
		o.UnitsEvery = protocol.UnitsEvery
	}
	bases := o.URLs
	if len(bases) == 0 {
		bases = []string{o.URL}
	}
	urls := make([]string, len(bases))
	for i, b := range bases {
		urls[i] = strings.TrimRight(b, "/") + protocol.IngestPath
	}
	s := &Sender{q: q, o: o, urls: urls, log: o.Logger}
	if len(o.Units) > 0 {
		if raw, err := json.Marshal(o.Units); err == nil && len(raw) <= maxUnitsBytes {
			s.units = raw
		} else {
			s.log.Warn("plugin units not sent: too large", "bytes", len(raw))
		}
	}
	return s
}

// maxUnitsBytes bounds the units object, so that it leaves most of a
// batch to samples.
const maxUnitsBytes = protocol.MaxBatchBytes / 4

// wantUnits reports whether the next batch should carry the units.
func (s *Sender) wantUnits() bool {
	return s.units != nil && s.daemonUnit && !s.unitsOff &&
		(s.unitsAt.IsZero() || s.o.Now().Sub(s.unitsAt) >= s.o.UnitsEvery)
}

// failover moves to the next daemon after the current one failed with
// err; it reports false when every daemon failed since the last batch
// that went through (tried counts them).
func (s *Sender) failover(tried *int, err error) bool {
	*tried++
	if *tried >= len(s.urls) {
		return false
	}
	from := s.urls[s.cur]
	s.cur = (s.cur + 1) % len(s.urls)
	s.since = s.o.Now()
	log := s.log.Warn
	if s.failing {
		log = s.log.Debug // every daemon failed before: the outage is logged
	}
	log("daemon cannot take samples; failing over to the next", "from", from, "to", s.urls[s.cur], "error", err)
	return true
}

// Run flushes the queue at once (a backlog from an earlier run goes out
// first) and then every Interval, backing off while the daemon cannot be
// reached, until ctx ends. It returns nil then.
func (s *Sender) Run(ctx context.Context) error {
	var delay, backoff time.Duration
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.Flush(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			backoff = min(max(2*backoff, s.o.Interval), s.o.MaxBackoff)
			delay = jitter(backoff)
			s.logFailure(err, delay)
		} else {
			backoff, delay = 0, s.o.Interval
		}
		t.Reset(delay)
	}
}

func (s *Sender) logFailure(err error, retry time.Duration) {
	switch {
	case errors.Is(err, ErrKeyRejected), errors.Is(err, ErrClockSkew):
		// Already logged loudly where it was detected.
	case !s.failing:
		s.log.Warn("cannot deliver samples, keeping them spooled", "error", err, "retry_in", retry.Round(time.Millisecond))
	default:
		s.log.Debug("still cannot deliver samples", "error", err, "retry_in", retry.Round(time.Millisecond))
	}
	s.failing = true
}

// jitter spreads retries of a fleet of agents over ±10%.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

// Flush sends batches until the queue is empty. It returns the first error
// that leaves samples undelivered; what was committed before stays committed.
func (s *Sender) Flush(ctx context.Context) error {
	limit := protocol.MaxBatchSamples
	budget := protocol.MaxBatchBytes - len(batchPrefix) - len(batchSuffix)
	sent, tried := 0, 0
	health := s.o.Health != nil && (s.lastHealth.IsZero() || s.o.Now().Sub(s.lastHealth) >= s.o.HealthEvery)
	if s.cur != 0 && s.o.Now().Sub(s.since) >= FailbackAfter {
		s.log.Info("trying the first daemon again", "daemon", s.urls[0], "was", s.urls[s.cur])
		s.cur = 0
	}
	for {
		n, room := limit, budget
		if health {
			// Leave the health sample its place in the batch.
			n, room = max(1, min(limit, protocol.MaxBatchSamples-1)), budget-healthReserve
		}
		var units []byte
		if s.wantUnits() {
			units = s.units
			room -= len(units) + len(`,"units":`)
		}
		recs, mark, err := s.q.Peek(n, room)
		if err != nil {
			return err
		}
		if len(recs) == 0 && !health {
			if s.failing {
				s.log.Info("daemon reachable again, spooled samples delivered", "samples", sent)
				s.failing = false
			}
			return nil
		}
		var extra []byte
		var info *protocol.AgentInfo
		if health {
			extra, info = s.healthRecord(recs)
		}
		status, msg, err := s.post(ctx, recs, extra, info, units)
		if err == nil && retryLater(status) {
			err = fmt.Errorf("daemon answered %d: %s", status, msg)
		}
		if err != nil {
			if ctx.Err() == nil && s.failover(&tried, err) {
				continue // the same batch, to the next daemon
			}
			return err
		}
		tried = 0
		if status == http.StatusOK {
			s.lastSend = s.o.Now()
			s.daemonHealth, s.daemonUnit = announces(msg)
			if health {
				s.lastHealth = s.lastSend
			}
			if s.sentUnits {
				s.unitsAt = s.lastSend
			}
		}
		if s.sentUnits && refused(status) {
			// Units are an extra: a daemon that refuses a batch carrying
			// them gets it again without, and no units any more.
			s.log.Warn("daemon refused the plugin units; sending without them", "status", status, "error", msg)
			s.unitsOff = true
			continue
		}
		if health {
			health = false
			if refused(status) {
				s.log.Debug("daemon refused the health sample; sending the batch without it", "status", status, "error", msg)
				continue
			}
		}
		if len(recs) == 0 {
			if status == http.StatusOK {
				continue
			}
		}
		switch {
		case status == http.StatusOK:
			if n, dup, ok := accepted(msg); ok && !dup && n < len(recs) {
				s.log.Warn("daemon accepted only part of a batch", "accepted", n, "sent", len(recs))
			}
			sent += len(recs)
			limit = protocol.MaxBatchSamples
		case refused(status) && len(recs) > 1:
			s.log.Debug("daemon refused a batch; splitting it", "status", status, "error", msg, "samples", len(recs))
			limit = len(recs) / 2
			continue
		case refused(status):
			s.log.Error("daemon refused a sample; dropping it", "status", status, "error", msg, "sample", excerpt(string(recs[0])))
		case status == http.StatusUnauthorized && strings.HasPrefix(msg, clockSkewPrefix):
			s.log.Warn("daemon refuses samples because of this host's clock; they keep spooling until the clock is fixed",
				"host", s.o.Host, "daemon_says", msg)
			return fmt.Errorf("%w: %s", ErrClockSkew, msg)
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			s.log.Error("daemon rejects this host's key or clock; samples keep spooling until host, key and clock match the daemon",
				"host", s.o.Host, "status", status, "error", msg)
			return fmt.Errorf("%w (status %d: %s)", ErrKeyRejected, status, msg)
		}
		if err := s.q.Commit(mark); err != nil {
			return err
		}
	}
}

// retryLater reports a status with which the daemon says it cannot take
// the batch now (5xx, 404, 429, ...): another daemon may.
func retryLater(status int) bool {
	return status != http.StatusOK && !refused(status) &&
		status != http.StatusUnauthorized && status != http.StatusForbidden
}

// refused reports a status with which the daemon says it will never take
// this batch as it is.
func refused(status int) bool {
	return status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge ||
		status == http.StatusUnprocessableEntity
}

// post sends one signed batch of recs, plus the health record extra and
// the agent object info when set, and returns the status and the daemon's
// error message (or, for 200, the raw body). A batch of the same records
// as the one sent without a definite answer goes again as that identical
// request, with the health it carried then.
func (s *Sender) post(ctx context.Context, recs [][]byte, extra []byte, info *protocol.AgentInfo, units []byte) (int, string, error) {
	joined := bytes.Join(recs, []byte{','})
	now := s.o.Now().Unix()
	sr := s.unsure
	if sr == nil || !bytes.Equal(sr.recs, joined) || now-sr.ts >= int64(resignAfter/time.Second) || now < sr.ts {
		body := make([]byte, 0, len(batchPrefix)+len(batchSuffix)+len(joined)+len(extra)+1)
		body = append(body, batchPrefix...)
		body = append(body, joined...)
		if extra != nil {
			if len(joined) > 0 {
				body = append(body, ',')
			}
			body = append(body, extra...)
		}
		body = append(body, ']')
		if info != nil {
			raw, err := json.Marshal(info)
			if err != nil {
				return 0, "", fmt.Errorf("encode agent info: %w", err)
			}
			body = append(body, `,"agent":`...)
			body = append(body, raw...)
		}
		if units != nil {
			body = append(body, `,"units":`...)
			body = append(body, units...)
		}
		body = append(body, '}')
		sr = &signed{recs: joined, units: units != nil, body: body, ts: now, sig: protocol.Sign(s.o.Key, s.o.Host, now, body)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.urls[s.cur], bytes.NewReader(sr.body))
	if err != nil {
		return 0, "", fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(protocol.HeaderHost, s.o.Host)
	req.Header.Set(protocol.HeaderTimestamp, strconv.FormatInt(sr.ts, 10))
	req.Header.Set(protocol.HeaderSignature, sr.sig)

	// Until a definite answer arrives the daemon may have stored the batch.
	s.unsure = sr
	s.sentUnits = sr.units
	resp, err := s.o.Client.Do(req)
	if err != nil {
		return 0, "", err // a *url.Error: names the method, URL and cause
	}
	defer resp.Body.Close()
	if resp.StatusCode < 500 {
		s.unsure = nil // answered: stored, or refused for good
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil && resp.StatusCode != http.StatusOK {
		return 0, "", fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, string(raw), nil
	}
	return resp.StatusCode, errorMessage(raw), nil
}

func errorMessage(raw []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return e.Error
	}
	return excerpt(strings.TrimSpace(string(raw)))
}

// excerpt keeps log lines short.
func excerpt(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// announces reports whether a 200 answer says the daemon takes the
// batch's "agent" object and its "units".
func announces(body string) (health, units bool) {
	var r struct {
		AgentHealth bool `json:"agent_health"`
		Units       bool `json:"units"`
	}
	if json.Unmarshal([]byte(body), &r) != nil {
		return false, false
	}
	return r.AgentHealth, r.Units
}

// healthRecord builds the health sample for a batch of recs (the oldest
// spooled records) and, for a daemon that takes it, the agent object.
func (s *Sender) healthRecord(recs [][]byte) ([]byte, *protocol.AgentInfo) {
	now := s.o.Now()
	h := s.o.Health()
	data := map[string]any{
		protocol.AgentPluginErrors: float64(h.PluginErrors),
		protocol.AgentLastSend:     0.0,
		protocol.AgentOldestUnsent: 0.0,
		protocol.AgentSpoolBytes:   0.0,
		protocol.AgentSpoolBatches: 0.0,
		protocol.AgentSpoolDropped: 0.0,
	}
	if !s.lastSend.IsZero() {
		data[protocol.AgentLastSend] = float64(s.lastSend.UnixMilli()) / 1e3
	}
	if len(recs) > 0 {
		var first struct {
			Timestamp float64 `json:"timestamp"`
		}
		if json.Unmarshal(recs[0], &first) == nil && first.Timestamp > 0 {
			data[protocol.AgentOldestUnsent] = max(0, float64(now.UnixMilli())/1e3-first.Timestamp)
		}
	}
	if st, ok := s.q.(Stater); ok {
		stats := st.Stats()
		data[protocol.AgentSpoolBytes] = float64(stats.Pending)
		data[protocol.AgentSpoolDropped] = float64(stats.Dropped)
		data[protocol.AgentSpoolBatches] = float64(estimateBatches(stats.Pending, recs))
	}
	rec, err := json.Marshal(protocol.Sample{Plugin: protocol.AgentPlugin, Timestamp: float64(now.UnixMilli()) / 1e3, Data: data})
	if err != nil {
		return nil, nil // cannot happen: numbers only
	}
	var info *protocol.AgentInfo
	if s.daemonHealth && h.LastPluginError != "" {
		info = &protocol.AgentInfo{LastPluginError: protocol.ClipAgentError(h.LastPluginError)}
	}
	return rec, info
}

// estimateBatches estimates how many batches pending spooled bytes take,
// from the record sizes of the first batch (recs): the spool counts bytes,
// not records.
func estimateBatches(pending int64, recs [][]byte) int64 {
	if pending <= 0 || len(recs) == 0 {
		return 0
	}
	size := 0
	for _, r := range recs {
		size += len(r) + spool.FrameOverhead
	}
	records := (pending*int64(len(recs)) + int64(size) - 1) / int64(size)
	budget := int64(protocol.MaxBatchBytes - len(batchPrefix) - len(batchSuffix))
	return max((records+protocol.MaxBatchSamples-1)/protocol.MaxBatchSamples, (pending+budget-1)/budget, 1)
}

func accepted(body string) (n int, duplicate, ok bool) {
	var r struct {
		Accepted  *int `json:"accepted"`
		Duplicate bool `json:"duplicate"`
	}
	if json.Unmarshal([]byte(body), &r) != nil || r.Accepted == nil {
		return 0, false, false
	}
	return *r.Accepted, r.Duplicate, true
}
