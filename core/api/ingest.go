package api

import (
	"bytes"
	"crypto/hmac"
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

// maxRememberedBatches bounds the replay guard's memory.
const maxRememberedBatches = 200_000

// replayGuard remembers the signatures of batches accepted within the
// clock-skew window, so a captured request sent again is not applied
// twice. Signatures older than the window cannot verify any more, so they
// are forgotten.
type replayGuard struct {
	mu       sync.Mutex
	accepted map[string]int64 // host + signature -> unix time it stops verifying
}

// seen reports whether key was accepted and still verifies at now.
func (g *replayGuard) seen(key string, now int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	exp, ok := g.accepted[key]
	return ok && exp >= now
}

// remember records an accepted request until it stops verifying.
func (g *replayGuard) remember(key string, now, expires int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.accepted == nil {
		g.accepted = map[string]int64{}
	}
	if len(g.accepted) >= maxRememberedBatches {
		for k, exp := range g.accepted {
			if exp < now {
				delete(g.accepted, k)
			}
		}
	}
	if len(g.accepted) < maxRememberedBatches {
		g.accepted[key] = expires
	}
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
	replayKey := host + "\x00" + strings.ToLower(req.Header.Get(protocol.HeaderSignature))
	if s.replays.seen(replayKey, now.Unix()) {
		// The same signed request again: a retry whose first answer was
		// lost, or a replay. Either way it is already stored.
		return c.JSON(http.StatusOK, map[string]any{"ok": true, "accepted": 0, "duplicate": true})
	}
	var batch protocol.Batch
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&batch); err != nil {
		return Errorf(http.StatusBadRequest, "invalid batch JSON: %v", err)
	}
	if len(batch.Samples) == 0 {
		return Errorf(http.StatusBadRequest, "batch has no samples")
	}
	if len(batch.Samples) > protocol.MaxBatchSamples {
		return Errorf(http.StatusRequestEntityTooLarge, "batch has %d samples, at most %d allowed", len(batch.Samples), protocol.MaxBatchSamples)
	}
	future := float64(now.Add(maxFutureSkew).Unix())
	out := make([]store.PluginSample, 0, len(batch.Samples))
	for i, smp := range batch.Samples {
		if err := protocol.ValidatePlugin(smp.Plugin); err != nil {
			return Errorf(http.StatusBadRequest, "samples[%d]: %v", i, err)
		}
		if smp.Timestamp <= 0 || smp.Timestamp > future {
			return Errorf(http.StatusBadRequest, "samples[%d]: timestamp %v is not a unix time within %s of the server clock", i, smp.Timestamp, maxFutureSkew)
		}
		metrics, err := protocol.Flatten(smp.Data)
		if err != nil {
			return Errorf(http.StatusBadRequest, "samples[%d] (%s): %v", i, smp.Plugin, err)
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
	s.replays.remember(replayKey, now.Unix(), now.Add(2*protocol.MaxClockSkew).Unix())
	return c.JSON(http.StatusOK, map[string]any{"ok": true, "accepted": len(out)})
}
