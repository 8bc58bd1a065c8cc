package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/protocol"
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
	if !ok {
		return Errorf(http.StatusUnauthorized, "unknown host or bad signature")
	}
	now := time.Now()
	if err := protocol.Verify(key, host, req.Header.Get(protocol.HeaderTimestamp), req.Header.Get(protocol.HeaderSignature), body, now); err != nil {
		if errors.Is(err, protocol.ErrStale) {
			return Errorf(http.StatusUnauthorized, "request time is more than %s away from the server clock", protocol.MaxClockSkew)
		}
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
	isNew, err := s.deps.Store.EnsureHost(ctx, host, dyn)
	if err != nil {
		return err
	}
	if isNew && dyn {
		s.deps.Store.Journal(host, host+" registered (dynamic)")
	}
	if err := s.deps.Store.AppendSamples(ctx, host, out); err != nil {
		if errors.Is(err, store.ErrTooManySeries) {
			return Errorf(http.StatusBadRequest, "%v", err)
		}
		return err
	}
	s.replays.remember(replayKey, now.Unix(), now.Add(2*protocol.MaxClockSkew).Unix())
	return c.JSON(http.StatusOK, map[string]any{"ok": true, "accepted": len(out)})
}
