package alert

import (
	"time"

	"github.com/hbdmon/hbd/sdk/level"
)

// ReplayWindow is how recent a notification must be, when the daemon
// starts, to be offered to the sink again.
//
// A level change is saved (handed to the store's writer) before its event
// reaches the sink, so a crash can never leave a queued notification
// without the change behind it; but a crash between the two commits leaves
// the change saved and its notification not queued. At start the
// evaluator therefore offers every notification decided within
// ReplayWindow before the restart again, as the identical event (same id,
// Replay set); the dispatcher queues it only to channels that do not hold
// that (event, channel) pair already, which it keeps far longer than this
// window. So a notification is neither lost nor sent twice by a crash.
const ReplayWindow = 10 * time.Minute

// replay offers the recent notifications of the loaded states again. It
// runs once in load, after reconcile; e.mu is held.
func (e *Evaluator) replay(now time.Time) {
	var out outbox
	for _, hs := range e.hostList() {
		hs.mu.Lock()
		for _, st := range hs.metrics {
			if st.count == 0 || st.lastNotified.IsZero() || now.Sub(st.lastNotified) >= ReplayWindow {
				continue
			}
			kind := st.lastKind
			if kind == "" { // saved before the kind was
				switch {
				case st.level == level.OK:
					kind = KindRecovery
				case st.count == 1:
					kind = KindChange
				default:
					kind = KindRenotify
				}
			}
			ev := e.eventOf(st, kind, st.lastPrev, st.lastNotified)
			ev.Replay = true
			out.events = append(out.events, ev)
		}
		hs.mu.Unlock()
	}
	if len(out.events) == 0 {
		return
	}
	e.log.Debug("offering recent notifications again after the restart", "count", len(out.events))
	e.emitMu.Lock()
	e.deliver(&out)
	e.emitMu.Unlock()
}
