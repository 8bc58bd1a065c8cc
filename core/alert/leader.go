package alert

import (
	"context"
	"errors"
	"fmt"

	"github.com/hbdmon/hbd/core/store"
)

// One evaluator per cluster decides (issue 15, docs/HA.md). With a leader
// fence set (SetLeader), the evaluator starts as a follower: it evaluates
// nothing, sweeps nothing and writes nothing. TakeOver (the cluster's
// takeover callback) loads the alert states, silences and open episodes
// from the database, as at a start, and then evaluates; StepDown stops
// it again and drops what it had not written. Every alert-state write of
// a clustered evaluator checks the fence in its own transaction
// (store.Fence.Check) and carries its epoch, so a leader that lost its
// lease writes nothing.

// FencedStates is a StateRepository whose writes can be fenced
// (*store.Store implements it).
type FencedStates interface {
	// SaveAlertStatesFenced queues the writes as one transaction that
	// checks f first; done (may be nil) gets the outcome.
	SaveAlertStatesFenced(f store.Fence, save []SavedState, del []Key, done func(error))
	// SaveAlertStatesFencedSync is SaveAlertStatesFenced waiting for the
	// commit.
	SaveAlertStatesFencedSync(ctx context.Context, f store.Fence, save []SavedState, del []Key) error
	// NewBatch starts writes that commit in one transaction behind f.
	NewBatch(f store.Fence) *store.Batch
	// SaveAlertStatesIn adds the writes to b; done (may be nil) gets
	// the batch's outcome.
	SaveAlertStatesIn(b *store.Batch, save []SavedState, del []Key, done func(error))
}

// ErrFollower is returned by TakeOver when the evaluator has no leader
// fence (a single daemon leads always).
var ErrFollower = errors.New("alert: not clustered")

// SetLeader makes the evaluator one of a cluster's: fn says whether this
// daemon leads, and with which fence. The repository must implement
// FencedStates. Call it before Start; the evaluator then starts as a
// follower until TakeOver.
func (e *Evaluator) SetLeader(fn store.FenceFunc) error {
	if e.started.Load() {
		return errors.New("alert: SetLeader after Start")
	}
	if _, ok := e.repo.(FencedStates); !ok {
		return fmt.Errorf("alert: the repository %T cannot fence its writes", e.repo)
	}
	e.leader = fn
	e.follower.Store(true)
	return nil
}

// Leading reports whether this evaluator decides: always without a
// leader fence, else between TakeOver and StepDown.
func (e *Evaluator) Leading() bool { return !e.follower.Load() }

// TakeOver makes a clustered evaluator the deciding one: it drops what
// it holds in memory, loads states, silences and open episodes from the
// database (offering recent notifications again, as after a restart: the
// dispatcher knows which it already holds), then evaluates. It waits for
// evaluations in progress.
func (e *Evaluator) TakeOver(ctx context.Context) error {
	if e.leader == nil {
		return ErrFollower
	}
	e.leadMu.Lock()
	defer e.leadMu.Unlock()
	if e.stopped.Load() {
		return nil
	}
	e.follower.Store(true)
	e.leadGen.Add(1) // the mirror is dropped: the load replaces it
	e.mu.Lock()
	e.resetLocked()
	e.mu.Unlock()
	e.taking.Store(true)
	defer e.taking.Store(false)
	if err := e.load(ctx); err != nil {
		return err
	}
	e.follower.Store(false)
	e.log.Info("alert evaluation: taking over as leader")
	return nil
}

// StepDown stops a clustered evaluator deciding: it waits for
// evaluations in progress and drops the writes it had not handed to the
// store (its fence would refuse them now).
func (e *Evaluator) StepDown() {
	if e.leader == nil {
		return
	}
	e.leadMu.Lock()
	defer e.leadMu.Unlock()
	if e.follower.Swap(true) {
		return
	}
	e.leadGen.Add(1) // the next mirror read replaces what it held
	e.mu.Lock()
	e.pendMu.Lock()
	n := len(e.pending) + len(e.waiting)
	e.pending, e.waiting = nil, nil
	e.pendMu.Unlock()
	e.mu.Unlock()
	e.log.Info("alert evaluation: stepped down", "unwritten", n)
}

// resetLocked forgets every state, silence, open episode and pending
// write held in memory; e.mu is held for writing.
func (e *Evaluator) resetLocked() {
	e.hmu.Lock()
	e.hosts = map[string]*hostState{}
	e.hmu.Unlock()
	e.active.reset()
	e.hist.mu.Lock()
	e.hist.open = nil
	e.hist.mu.Unlock()
	e.heldMu.Lock()
	clear(e.held)
	e.heldMu.Unlock()
	e.pendMu.Lock()
	e.pending, e.waiting = nil, nil
	e.pendMu.Unlock()
	e.silMu.Lock()
	e.silences = nil
	e.silMu.Unlock()
}

// saveFenced writes rows and del behind the leader's fence; when this
// daemon no longer leads they are dropped (the next leader loads what
// was committed).
func (e *Evaluator) saveFenced(ctx context.Context, rows []SavedState, del []Key, wait bool) error {
	if len(rows) == 0 && len(del) == 0 {
		return nil
	}
	f, ok, _ := e.fence(rows, del)
	if !ok {
		return nil
	}
	repo := e.repo.(FencedStates)
	if wait {
		err := repo.SaveAlertStatesFencedSync(ctx, f, rows, del)
		if errors.Is(err, store.ErrNotLeader) {
			e.log.Warn("alert state writes refused: the lease moved on", "epoch", f.Epoch)
			return nil
		}
		return err
	}
	done := e.fencedDone(f)
	for len(rows) > flushChunk {
		repo.SaveAlertStatesFenced(f, rows[:flushChunk], nil, done)
		rows = rows[flushChunk:]
	}
	repo.SaveAlertStatesFenced(f, rows, del, done)
	return nil
}

// saveBatch starts the fenced batch the state changes behind a set of
// events commit in, with rows and del as its first writes; the events
// carry it to the dispatcher, which adds their outbox rows (Event.Batch),
// and the caller commits it. nil when this daemon does not lead (the
// writes are dropped, or kept for after a takeover in progress).
func (e *Evaluator) saveBatch(rows []SavedState, del []Key, done func(error)) (b *store.Batch, later bool) {
	f, ok, later := e.fence(rows, del)
	if !ok {
		return nil, later
	}
	repo := e.repo.(FencedStates)
	b = repo.NewBatch(f)
	if len(rows) == 0 && len(del) == 0 {
		if done != nil {
			done(nil) // nothing to write
		}
		return b, false
	}
	logged := e.fencedDone(f)
	repo.SaveAlertStatesIn(b, rows, del, func(err error) {
		logged(err)
		if done != nil {
			done(err)
		}
	})
	return b, false
}

// sendEvents hands events to the sink in the fenced batch that writes
// rows and del (saveBatch), then commits it; done, when set, is called
// with the outcome of the writes. Events that waited for the fence to
// open go first. While a takeover has not opened the fence yet, the
// events wait with the writes for the next flush: sent now, the
// dispatcher would refuse them (no fence) while their states were
// written later, so the change would never be notified. When this daemon
// does not lead, the sink gets them without a batch and refuses them, as
// the writes are dropped. flushMu is held.
func (e *Evaluator) sendEvents(rows []SavedState, del []Key, events []Event, done func(error)) {
	e.pendMu.Lock()
	if len(e.waiting) > 0 {
		events = append(e.waiting, events...)
		e.waiting = nil
	}
	e.pendMu.Unlock()
	b, later := e.saveBatch(rows, del, done)
	if later {
		e.pendMu.Lock()
		e.waiting = append(events, e.waiting...)
		e.pendMu.Unlock()
		e.log.Debug("takeover not finished: alert events wait for the fence", "events", len(events))
		if done != nil {
			done(nil)
		}
		return
	}
	for _, ev := range events {
		ev.Batch = b
		e.sink.AlertEvent(ev)
	}
	if b != nil {
		b.Commit()
	} else if done != nil {
		done(nil)
	}
}

// hasWaiting reports whether events wait for the fence.
func (e *Evaluator) hasWaiting() bool {
	e.pendMu.Lock()
	defer e.pendMu.Unlock()
	return len(e.waiting) > 0
}

// fence returns the fence to write under; ok false when this daemon does
// not lead: rows and del are then dropped, or requeued for the next flush
// (later) while a takeover is in progress or its fence not yet open.
func (e *Evaluator) fence(rows []SavedState, del []Key) (f store.Fence, ok, later bool) {
	f, ok = e.leader.Leading()
	if !ok && (e.taking.Load() || !e.follower.Load()) {
		// A takeover in progress, or done while the node has not opened
		// its fence yet (it does once every takeover callback returned):
		// what the load reconciled, or was decided since, is written at
		// the next flush. A leader that lost its fence is stepped down
		// next, which drops them.
		e.requeue(rows, del)
		return f, false, true
	}
	if !ok && (len(rows) > 0 || len(del) > 0) {
		e.log.Debug("not leading: alert state writes dropped", "states", len(rows), "deleted", len(del))
	}
	return f, ok, false
}

// fencedDone logs the outcome of a fenced write queued under f.
func (e *Evaluator) fencedDone(f store.Fence) func(error) {
	return func(err error) {
		switch {
		case errors.Is(err, store.ErrNotLeader):
			e.log.Warn("alert state writes refused: the lease moved on", "epoch", f.Epoch)
		case err != nil:
			e.log.Error("saving alert states failed", "error", err)
		}
	}
}

// requeue puts writes back in front of the pending ones, for the next
// flush. flushMu is held.
func (e *Evaluator) requeue(rows []SavedState, del []Key) {
	ops := make([]pendingOp, 0, len(rows)+len(del))
	for _, r := range rows {
		ops = append(ops, pendingOp{row: r})
	}
	for _, k := range del {
		ops = append(ops, pendingOp{row: SavedState{Host: k.Host, Metric: k.Metric}, del: true})
	}
	e.pendMu.Lock()
	e.pending = append(ops, e.pending...)
	e.pendMu.Unlock()
}
