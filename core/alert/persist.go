package alert

// Persistence: states are loaded at Start and handed to the store in
// snapshot order by flush.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/sdk/level"
)

// pendingOp is a state snapshot (or, with del, a deletion) waiting for the
// next flush.
type pendingOp struct {
	row SavedState
	del bool
}

// load restores persisted silences and states and reconciles them with the
// current configuration.
func (e *Evaluator) load(ctx context.Context) error {
	sils, err := e.repo.Silences(ctx)
	if err != nil {
		return fmt.Errorf("load silences: %w", err)
	}
	now := e.now()
	e.silMu.Lock()
	for _, sl := range sils {
		if c, err := compileSilence(sl); err == nil {
			e.silences = append(e.silences, c)
		} else {
			e.log.Warn("ignoring stored silence", "id", sl.ID, "error", err)
		}
	}
	e.silMu.Unlock()
	rows, err := e.repo.AlertStates(ctx)
	if err != nil {
		return fmt.Errorf("load alert states: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, a := range rows {
		hs := e.hostState(a.Host, true)
		st := stateFromRow(hs, a, now)
		hs.metrics[a.Metric] = st
		e.active.update(st)
	}
	if err := e.resumeEpisodes(ctx, now); err != nil {
		return err
	}
	e.reconcile(e.rules, now)
	e.replay(now)
	e.log.Debug("alert states loaded", "states", len(rows), "silences", len(sils))
	return nil
}

// stateFromRow is the in-memory state of a stored row of host hs, seen
// at now.
func stateFromRow(hs *hostState, a SavedState, now time.Time) *state {
	st := &state{
		host: a.Host, metric: a.Metric, hs: hs, level: a.Level, since: a.Since,
		lastValue: a.LastValue, lastCheck: a.LastCheck, lastSeen: now,
		count: a.NotificationCount, notifiedLevel: a.NotifiedLevel,
		ack: a.Acknowledged, ackBy: a.AckBy, flapping: a.Flapping, detail: a.Detail,
		heartbeat: familyOf(a.Metric) != "" || a.Metric == HeartbeatHost,
		clock:     a.Metric == HeartbeatClockOffset,
		episode:   a.EpisodeStart,
		stored:    true,
	}
	if a.LastNotified > 0 {
		st.lastNotified = fromUnix(a.LastNotified)
	}
	st.lastKind, st.lastPrev, st.lastEpisode = a.LastKind, a.PrevLevel, a.LastEpisode
	if st.flapping {
		st.lastChange, st.flapLevel = now, st.notifiedLevel
	}
	if st.heartbeat {
		// The tracker's state behind the level, persisted as the detail.
		st.hb = &hbInfo{state: heartbeat.State(a.Detail)}
	}
	if !st.level.Valid() {
		st.level = level.Unknown
	}
	switch {
	case st.level == level.OK:
		st.episode = 0
	case st.episode == 0:
		st.episode = st.since // stored before episodes were
	}
	if st.level != level.OK {
		st.worst = st.level
	}
	return st
}

// flush hands dirty states to the store; all adds states whose value
// changed, wait waits for the commit.
func (e *Evaluator) flush(ctx context.Context, all, wait bool) error {
	if all {
		// Queued like any snapshot, under the host lock, so they keep
		// their place after older snapshots of the same state.
		for _, hs := range e.hostList() {
			hs.mu.Lock()
			for _, st := range hs.metrics {
				if st.valueDirty {
					e.save(st)
				}
			}
			hs.mu.Unlock()
		}
	}
	// flushMu keeps the store's queue in snapshot order across flushes.
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	rows, del := e.takePending()
	if e.leader != nil && e.hasWaiting() {
		// Events that waited for the fence go with these writes.
		if !wait {
			e.sendEvents(rows, del, nil, nil)
			return nil
		}
		res := make(chan error, 1)
		e.sendEvents(rows, del, nil, func(err error) { res <- err })
		select {
		case err := <-res:
			if errors.Is(err, store.ErrNotLeader) {
				return nil
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if e.leader != nil {
		return e.saveFenced(ctx, rows, del, wait)
	}
	if wait {
		return e.repo.SaveAlertStatesSync(ctx, rows, del)
	}
	// In slices, so the store's writer can commit ingestion in between.
	for len(rows) > flushChunk {
		e.repo.SaveAlertStates(rows[:flushChunk], nil)
		rows = rows[flushChunk:]
	}
	e.repo.SaveAlertStates(rows, del)
	return nil
}

// takePending takes the pending operations, only the newest of each
// state. flushMu is held.
func (e *Evaluator) takePending() (rows []SavedState, del []Key) {
	e.pendMu.Lock()
	ops := e.pending
	e.pending = nil
	e.pendMu.Unlock()
	// Only the newest operation of each state is written.
	last := make(map[Key]int, len(ops))
	for i, op := range ops {
		last[Key{Host: op.row.Host, Metric: op.row.Metric}] = i
	}
	for i, op := range ops {
		k := Key{Host: op.row.Host, Metric: op.row.Metric}
		switch {
		case last[k] != i:
		case op.del:
			del = append(del, k)
		default:
			rows = append(rows, op.row)
		}
	}
	return rows, del
}

// handOff queues every pending snapshot with the store's writer without
// waiting for the commit.
func (e *Evaluator) handOff() {
	if err := e.flush(context.Background(), false, false); err != nil {
		e.log.Error("saving alert states failed", "error", err)
	}
}

// Flush writes every state to the store and waits for the commit.
func (e *Evaluator) Flush(ctx context.Context) error { return e.flush(ctx, true, true) }

func (st *state) row() SavedState {
	r := SavedState{
		Host: st.host, Metric: st.metric, Level: st.level, Since: st.since,
		LastValue: st.lastValue, LastCheck: st.lastCheck, NotificationCount: st.count,
		NotifiedLevel: st.notifiedLevel, Acknowledged: st.ack, AckBy: st.ackBy,
		Flapping: st.flapping, Detail: st.detail, EpisodeStart: st.episode,
		PrevLevel: st.lastPrev, LastKind: st.lastKind, LastEpisode: st.lastEpisode,
	}
	if !st.lastNotified.IsZero() {
		r.LastNotified = toUnix(st.lastNotified)
	}
	return r
}

// save queues a snapshot of st for the next flush. The host must be locked.
func (e *Evaluator) save(st *state) {
	row := st.row()
	st.valueDirty, st.stored = false, true
	e.pendMu.Lock()
	e.pending = append(e.pending, pendingOp{row: row})
	e.pendMu.Unlock()
}
