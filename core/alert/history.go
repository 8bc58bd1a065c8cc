package alert

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hbdmon/hbd/sdk/level"
)

// Alert history: every episode of a (host, metric path), from the moment
// it leaves OK (to WARNING, CRITICAL or UNKNOWN) until it is OK again, is
// kept in the store (Episode) with its worst level, its peak value,
// who acknowledged it and the text of its worst moment. The open row of an
// episode is written when the episode starts, when its worst level rises,
// when it is acknowledged and when it ends; a worse peak value is written
// with those, or on its own at most once per episodeSaveEvery. Rows are
// keyed by (host, metric, episode start), so after a restart the loaded
// states continue their open rows.
//
// The evaluator calls the hooks below with the host locked; episodes.mu
// is taken after it and nothing is taken under it.

// episodeSaveEvery bounds how often a worse peak value alone rewrites an
// open episode.
const episodeSaveEvery = time.Minute

// episodes holds the open episode of every state that is not OK.
type episodes struct {
	mu   sync.Mutex
	open map[Key]*openEpisode
}

type openEpisode struct {
	row   Episode
	saved time.Time // evaluator clock at the last write
	dirty bool      // the peak changed since the last write
}

// putEpisode registers an open episode; e.hist.mu must be held.
func (e *Evaluator) putEpisode(ep *openEpisode) {
	if e.hist.open == nil {
		e.hist.open = map[Key]*openEpisode{}
	}
	e.hist.open[Key{Host: ep.row.Host, Metric: ep.row.Metric}] = ep
}

// episodeStart is the start of the episode st is in.
func episodeStart(st *state) float64 {
	if st.episode != 0 {
		return st.episode
	}
	return st.since
}

// hasValue reports whether a level's value says something about the
// episode: UNKNOWN comes from missing data, its last value is stale.
func hasValue(lv level.Level) bool {
	return lv == level.Warning || lv == level.Critical
}

// worse reports whether v is a worse value of st than peak: higher, lower
// for a `below` threshold, further from zero for the clock offset.
func worse(st *state, v, peak float64) bool {
	if st.rule != nil && st.rule.th.Below {
		return v < peak
	}
	return st.measure(v) > st.measure(peak)
}

// takePeak records v as the episode's peak when it is worse; it reports
// whether the peak changed.
func takePeak(st *state, ep *openEpisode, v float64) bool {
	if ep.row.HasPeak && !worse(st, v, ep.row.Peak) {
		return false
	}
	ep.row.Peak, ep.row.HasPeak = v, true
	return true
}

func (e *Evaluator) saveEpisodes(rows []Episode) {
	if len(rows) > 0 {
		e.repo.SaveEpisodes(rows...)
	}
}

// episodeChanged records a level change of st (setLevel calls it once the
// change is made); text says the change in words. The host must be locked.
func (e *Evaluator) episodeChanged(st *state, text string, now time.Time) {
	key := Key{Host: st.host, Metric: st.metric}
	var rows []Episode
	defer func() { e.saveEpisodes(rows) }()
	e.hist.mu.Lock()
	defer e.hist.mu.Unlock()
	ep := e.hist.open[key]
	if st.level == level.OK {
		if ep != nil {
			delete(e.hist.open, key)
			ep.row.End = max(st.since, ep.row.Start)
			rows = append(rows, ep.row)
		}
		return
	}
	start := episodeStart(st)
	if ep != nil && ep.row.Start != start {
		// A new episode began without an OK in between: the old one
		// ends where the new one starts.
		delete(e.hist.open, key)
		ep.row.End = max(start, ep.row.Start)
		rows = append(rows, ep.row)
		ep = nil
	}
	changed := false
	if ep == nil {
		ep = &openEpisode{row: Episode{Host: st.host, Metric: st.metric, Start: start, WorstLevel: st.level, Text: text}}
		e.putEpisode(ep)
		changed = true
	} else if st.level.Rank() > ep.row.WorstLevel.Rank() {
		ep.row.WorstLevel, ep.row.Text = st.level, text
		changed = true
	}
	if hasValue(st.level) && takePeak(st, ep, st.lastValue) {
		ep.dirty = true
	}
	if changed || ep.dirty {
		ep.saved, ep.dirty = now, false
		rows = append(rows, ep.row)
	}
}

// episodeValue records a value of st for the peak of its open episode
// (observe calls it once the value is evaluated). The host must be locked.
func (e *Evaluator) episodeValue(st *state, v float64, now time.Time) {
	if !hasValue(st.level) {
		return
	}
	var rows []Episode
	e.hist.mu.Lock()
	ep := e.hist.open[Key{Host: st.host, Metric: st.metric}]
	if ep != nil && takePeak(st, ep, v) {
		ep.dirty = true
	}
	if ep != nil && ep.dirty && now.Sub(ep.saved) >= episodeSaveEvery {
		ep.saved, ep.dirty = now, false
		rows = append(rows, ep.row)
	}
	e.hist.mu.Unlock()
	e.saveEpisodes(rows)
}

// episodeAcked records an acknowledgement of st (Ack calls it). The host
// must be locked.
func (e *Evaluator) episodeAcked(st *state) {
	var rows []Episode
	e.hist.mu.Lock()
	if ep := e.hist.open[Key{Host: st.host, Metric: st.metric}]; ep != nil {
		ep.row.AckBy = st.ackBy
		ep.saved, ep.dirty = e.now(), false
		rows = append(rows, ep.row)
	}
	e.hist.mu.Unlock()
	e.saveEpisodes(rows)
}

// episodesGone ends the open episodes of states that went away (forgotten,
// no longer matched by a rule, host no longer watched) at end (unix
// seconds).
func (e *Evaluator) episodesGone(keys []Key, end float64) {
	var rows []Episode
	e.hist.mu.Lock()
	for _, k := range keys {
		if ep := e.hist.open[k]; ep != nil {
			delete(e.hist.open, k)
			ep.row.End = max(end, ep.row.Start)
			rows = append(rows, ep.row)
		}
	}
	e.hist.mu.Unlock()
	e.saveEpisodes(rows)
}

// resumeEpisodes continues the open episodes of the loaded states after a
// restart (load calls it before reconciling): an open row whose state is
// still not OK stays open; one whose state is OK or gone ends (when the
// state turned OK, or now); a state that is not OK without an open row
// (stored before the history existed, or the row was lost in a crash)
// opens one.
func (e *Evaluator) resumeEpisodes(ctx context.Context, now time.Time) error {
	stored, err := e.repo.OpenEpisodes(ctx)
	if err != nil {
		return fmt.Errorf("load alert history: %w", err)
	}
	// What the loaded states say, taken under their hosts' locks.
	type loaded struct {
		level        level.Level
		since, start float64
		row          Episode // the episode a state that is not OK is in
	}
	states := map[Key]loaded{}
	for _, hs := range e.hostList() {
		hs.mu.Lock()
		for _, st := range hs.metrics {
			l := loaded{level: st.level, since: st.since, start: episodeStart(st)}
			if st.level != level.OK {
				l.row = Episode{Host: st.host, Metric: st.metric, Start: l.start, WorstLevel: st.level,
					AckBy: st.ackBy, Text: e.textOf(st, "", now)}
				if hasValue(st.level) {
					l.row.Peak, l.row.HasPeak = st.lastValue, true
				}
			}
			states[Key{Host: st.host, Metric: st.metric}] = l
		}
		hs.mu.Unlock()
	}

	var rows []Episode
	e.hist.mu.Lock()
	// Oldest first: a later open row of the same metric ends the earlier.
	for _, row := range stored {
		key := Key{Host: row.Host, Metric: row.Metric}
		if old := e.hist.open[key]; old != nil {
			old.row.End = max(row.Start, old.row.Start)
			rows = append(rows, old.row)
		}
		row.ID = 0
		e.putEpisode(&openEpisode{row: row, saved: now})
	}
	for key, ep := range e.hist.open {
		l, ok := states[key]
		switch {
		case !ok:
			ep.row.End = max(toUnix(now), ep.row.Start)
		case l.level == level.OK:
			ep.row.End = max(l.since, ep.row.Start)
		case l.start != ep.row.Start:
			ep.row.End = max(l.start, ep.row.Start)
		default:
			if l.level.Rank() > ep.row.WorstLevel.Rank() {
				ep.row.WorstLevel, ep.row.Text = l.level, l.row.Text
				rows = append(rows, ep.row)
			}
			continue
		}
		delete(e.hist.open, key)
		rows = append(rows, ep.row)
	}
	for key, l := range states {
		if l.level != level.OK && e.hist.open[key] == nil {
			e.putEpisode(&openEpisode{row: l.row, saved: now})
			rows = append(rows, l.row)
		}
	}
	open := len(e.hist.open)
	e.hist.mu.Unlock()
	if len(rows) > 0 {
		e.log.Debug("alert history resumed", "open", open, "written", len(rows))
	}
	e.saveEpisodes(rows)
	return nil
}

// saveDirtyEpisodes writes the open episodes whose peak changed since
// their last write (Stop calls it before the final flush).
func (e *Evaluator) saveDirtyEpisodes() {
	var rows []Episode
	e.hist.mu.Lock()
	for _, ep := range e.hist.open {
		if ep.dirty {
			ep.dirty = false
			rows = append(rows, ep.row)
		}
	}
	e.hist.mu.Unlock()
	e.saveEpisodes(rows)
}
