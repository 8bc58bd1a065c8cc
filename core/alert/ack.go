package alert

// Acknowledgement of a non-OK metric.

import (
	"context"
	"fmt"

	"github.com/hbdmon/hbd/sdk/level"
)

// ack acknowledges a host's non-OK metric on behalf of user by: renotify
// stops until the level changes, and the first acknowledgement of a
// notified problem sends a KindAcknowledged event (unless the metric is
// silenced or flapping). It returns ErrUnknownMetric or
// ErrNotAlerting when there is nothing to acknowledge.
func (e *Evaluator) ack(ctx context.Context, host, metric, by string) (Status, error) {
	hs := e.hostState(host, false)
	if hs == nil {
		return Status{}, ErrUnknownMetric
	}
	hs.mu.Lock()
	st := hs.metrics[metric]
	if st == nil {
		hs.mu.Unlock()
		return Status{}, ErrUnknownMetric
	}
	if st.level == level.OK {
		hs.mu.Unlock()
		return Status{}, ErrNotAlerting
	}
	already := st.ack
	st.ack, st.ackBy = true, by
	e.episodeAcked(st)
	now := e.now()
	// The channels that were told of the problem are told it is being
	// handled, once (a second acknowledgement only changes who).
	var out outbox
	if !already && st.count > 0 && !st.flapping && !e.silenced(st, now) {
		e.notify(st, KindAcknowledged, st.prevLevel, now, &out)
	}
	e.save(st)
	view := e.status(st, now)
	e.release(hs, &out)
	// Through the pending queue, so an older queued row of this state can
	// never overwrite the acknowledgement.
	if err := e.flush(ctx, false, true); err != nil {
		return Status{}, err
	}
	e.repo.Journal(host, fmt.Sprintf("%s %s %s acknowledged by %s", host, metric, view.Level, who(by)))
	s := []Status{view}
	e.addSilences(s, e.now())
	return s[0], nil
}
