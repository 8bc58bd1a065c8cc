package alert

// The follower's mirror (issue 15, docs/HA.md): a clustered evaluator that
// does not lead decides nothing, but serves the alert states and
// silences the leader committed, read from the database about every
// second (SyncMirror). The mirror never writes, never notifies and never
// journals; TakeOver drops it and loads the state as a leader, and after
// StepDown the next SyncMirror reads everything again.

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/sdk/level"
)

// MirrorEvery is how often the daemon calls SyncMirror while following.
const MirrorEvery = time.Second

// mirrorFullEvery is how often the mirror reads every state again rather
// than the changes since its last read (well within
// store.TombstoneRetention, which bounds how far back deletions are
// known).
const mirrorFullEvery = 5 * time.Minute

// ClusterStore is what a clustered evaluator reads and asks of the
// database besides its Repository (*store.Store implements it).
type ClusterStore interface {
	// AlertStateChanges reads the alert states written since c (all of
	// them for the zero cursor), the deletions since c, and every
	// silence, in one snapshot.
	AlertStateChanges(ctx context.Context, c store.AlertStateCursor) (store.AlertStateChanges, error)
	// RunAlertCommand hands a command to the leader and waits up to wait
	// for its result (store.ErrNoAnswer when none came).
	RunAlertCommand(ctx context.Context, kind string, args []byte, by string, wait time.Duration) ([]byte, error)
}

// mirror is a follower's read position. mu orders SyncMirror calls.
type mirror struct {
	mu       sync.Mutex
	src      ClusterStore
	feed     Sink // told of the level changes read; nil: nobody
	cur      store.AlertStateCursor
	gen      uint64 // the evaluator's leadGen cur belongs to
	lastFull time.Time
	wait     time.Duration // how long a command waits for the leader; CommandWait unless a test changes it
}

// SetMirror gives a clustered evaluator (SetLeader) the database it
// mirrors while following and through which it hands acknowledgements
// and silences to the leader. feed (may be nil; the daemon's live feed)
// is told of the level changes the mirror reads, as the leader's own
// feed is told of its decisions; nothing else is (no notification). Call
// it before Start.
func (e *Evaluator) SetMirror(src ClusterStore, feed Sink) error {
	if e.started.Load() {
		return errors.New("alert: SetMirror after Start")
	}
	if e.leader == nil {
		return errors.New("alert: SetMirror without SetLeader")
	}
	e.mirror.src, e.mirror.feed = src, feed
	e.mirror.wait = CommandWait
	return nil
}

// SyncMirror brings a follower's states and silences up to what the
// leader committed: the changes since the last call, or everything after
// a takeover, a step-down, a reload or every few minutes. It does nothing
// while this evaluator leads (or takes over), or without SetMirror.
// Callers call it about every MirrorEvery from one goroutine.
func (e *Evaluator) SyncMirror(ctx context.Context) error {
	m := &e.mirror
	if e.leader == nil || m.src == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !e.mirroring() {
		return nil
	}
	gen := e.leadGen.Load()
	cur := m.cur
	if gen != m.gen || time.Since(m.lastFull) >= mirrorFullEvery {
		cur = store.AlertStateCursor{}
	}
	ch, err := m.src.AlertStateChanges(ctx, cur)
	if err != nil {
		return err
	}
	e.leadMu.Lock()
	defer e.leadMu.Unlock()
	if !e.mirroring() || e.leadGen.Load() != gen {
		return nil // took over, stepped down or reloaded meanwhile: read again
	}
	changes := e.applyMirror(ch)
	m.cur, m.gen = ch.Next, gen
	if m.feed != nil {
		for _, ev := range changes {
			m.feed.AlertEvent(ev)
		}
	}
	if ch.Full {
		m.lastFull = time.Now()
	}
	return nil
}

// mirroring reports whether this evaluator follows (and is not taking
// over).
func (e *Evaluator) mirroring() bool {
	return e.leader != nil && e.follower.Load() && !e.taking.Load() && !e.stopped.Load()
}

// applyMirror puts a read of the database into memory: the states read
// replace the held ones, deleted ones go (with a full read, every state
// not read), and the silences are replaced. It returns the level
// changes it saw, as events for the live feed: a held state whose level
// differs, or (reading changes only) a new state that is not OK. leadMu
// is held.
func (e *Evaluator) applyMirror(ch store.AlertStateChanges) (changes []Event) {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	rs := e.rules
	var seen map[Key]bool
	if ch.Full {
		seen = make(map[Key]bool, len(ch.States))
	}
	for _, a := range ch.States {
		if seen != nil {
			seen[Key{Host: a.Host, Metric: a.Metric}] = true
		}
		hs := e.hostState(a.Host, true)
		st := stateFromRow(hs, a, now)
		if !st.heartbeat {
			st.rule = rs.ruleFor(a.Host, a.Metric)
		}
		hs.mu.Lock()
		old := hs.metrics[a.Metric]
		if old != nil {
			e.active.remove(old)
		}
		if old != nil && old.level != st.level || old == nil && !ch.Full && st.level != level.OK {
			prev, kind := level.OK, KindChange
			if old != nil {
				prev = old.level
			}
			if st.level == level.OK {
				kind = KindRecovery
			}
			changes = append(changes, e.eventOf(st, kind, prev, now))
		}
		hs.metrics[a.Metric] = st
		e.active.update(st)
		hs.mu.Unlock()
	}
	del := ch.Deleted
	if seen != nil {
		for _, hs := range e.hostList() {
			hs.mu.Lock()
			for m := range hs.metrics {
				if k := (Key{Host: hs.name, Metric: m}); !seen[k] {
					del = append(del, k)
				}
			}
			hs.mu.Unlock()
		}
	}
	for _, k := range del {
		hs := e.hostState(k.Host, false)
		if hs == nil {
			continue
		}
		hs.mu.Lock()
		if st := hs.metrics[k.Metric]; st != nil {
			e.active.remove(st)
			delete(hs.metrics, k.Metric)
		}
		if len(hs.metrics) == 0 {
			e.hmu.Lock()
			delete(e.hosts, k.Host)
			e.hmu.Unlock()
		}
		hs.mu.Unlock()
	}
	sils := make([]silence, 0, len(ch.Silences))
	for _, sl := range ch.Silences {
		if c, err := compileSilence(sl); err == nil {
			sils = append(sils, c)
		}
	}
	e.silMu.Lock()
	e.silences = sils
	e.silMu.Unlock()
	return changes
}
