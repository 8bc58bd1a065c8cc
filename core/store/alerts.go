package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/hbdmon/hbd/core/alert/record"
)

// Alert persistence: the evaluator (package alert) keeps its states in
// memory and saves them here so a restart restores level, since, counts,
// acknowledgements and silences. The Store implements alert.Repository
// with the plain values of package record; it holds no alert logic.
// Migration versions 10–19 belong to it.
func init() {
	register(migration{Version: 10, Name: "alerting", SQL: `
CREATE TABLE alert_states (
	host               TEXT NOT NULL,
	metric             TEXT NOT NULL,
	level              TEXT NOT NULL,
	since              REAL NOT NULL,
	last_value         REAL NOT NULL,
	last_check         REAL NOT NULL,
	notification_count INTEGER NOT NULL DEFAULT 0,
	last_notified      REAL NOT NULL DEFAULT 0,
	notified_level     TEXT NOT NULL DEFAULT '',
	acknowledged       INTEGER NOT NULL DEFAULT 0,
	ack_by             TEXT NOT NULL DEFAULT '',
	flapping           INTEGER NOT NULL DEFAULT 0,
	detail             TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (host, metric)
) WITHOUT ROWID;
CREATE TABLE alert_silences (
	id         TEXT PRIMARY KEY,
	host       TEXT NOT NULL,
	metric     TEXT NOT NULL,
	created    REAL NOT NULL,
	until      REAL NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	comment    TEXT NOT NULL DEFAULT ''
);
`})
	// The start of the alert episode (when the metric left OK), so
	// notifications and the history keep it across a restart.
	register(migration{Version: 12, Name: "alert episode start", SQL: `
ALTER TABLE alert_states ADD COLUMN episode_start REAL NOT NULL DEFAULT 0;
`})
	// What the last notification was, so one decided just before a crash
	// can be offered again, identical, after the restart.
	register(migration{Version: 13, Name: "alert last notification", SQL: `
ALTER TABLE alert_states ADD COLUMN prev_level TEXT NOT NULL DEFAULT '';
ALTER TABLE alert_states ADD COLUMN last_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE alert_states ADD COLUMN last_episode REAL NOT NULL DEFAULT 0;
`})
	// When a silence takes effect: silences may be scheduled for later.
	// Rows from before it started at creation.
	register(migration{Version: 14, Name: "silence start", SQL: `
ALTER TABLE alert_silences ADD COLUMN starts REAL NOT NULL DEFAULT 0;
UPDATE alert_silences SET starts = created;
`})
}

const upsertAlertState = `INSERT INTO alert_states
	(host, metric, level, since, last_value, last_check, notification_count, last_notified, notified_level, acknowledged, ack_by, flapping, detail, episode_start, prev_level, last_kind, last_episode)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (host, metric) DO UPDATE SET
	level = excluded.level, since = excluded.since, last_value = excluded.last_value,
	last_check = excluded.last_check, notification_count = excluded.notification_count,
	last_notified = excluded.last_notified, notified_level = excluded.notified_level,
	acknowledged = excluded.acknowledged, ack_by = excluded.ack_by,
	flapping = excluded.flapping, detail = excluded.detail, episode_start = excluded.episode_start,
	prev_level = excluded.prev_level, last_kind = excluded.last_kind, last_episode = excluded.last_episode`

// alertTx writes alert state upserts and deletions in one transaction.
func alertTx(tx *sql.Tx, save []record.SavedState, del []record.Key) error {
	if len(save) > 0 {
		stmt, err := tx.Prepare(upsertAlertState)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, a := range save {
			if _, err := stmt.Exec(a.Host, a.Metric, a.Level, a.Since, a.LastValue, a.LastCheck,
				a.NotificationCount, a.LastNotified, a.NotifiedLevel, a.Acknowledged, a.AckBy, a.Flapping, a.Detail, a.EpisodeStart,
				a.PrevLevel, a.LastKind, a.LastEpisode); err != nil {
				return fmt.Errorf("save alert %s %s: %w", a.Host, a.Metric, err)
			}
		}
	}
	if len(del) > 0 {
		stmt, err := tx.Prepare(`DELETE FROM alert_states WHERE host = ? AND metric = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, k := range del {
			if _, err := stmt.Exec(k.Host, k.Metric); err != nil {
				return fmt.Errorf("delete alert %s %s: %w", k.Host, k.Metric, err)
			}
		}
	}
	return nil
}

// SaveAlertStates queues upserts of states and deletions of keys without
// waiting for the commit; writes queued later win, so callers may save the
// same state repeatedly.
func (s *Store) SaveAlertStates(save []record.SavedState, del []record.Key) {
	if len(save) == 0 && len(del) == 0 {
		return
	}
	s.Go(func(tx *sql.Tx) error { return alertTx(tx, save, del) })
}

// SaveAlertStatesSync is SaveAlertStates waiting for the commit.
func (s *Store) SaveAlertStatesSync(ctx context.Context, save []record.SavedState, del []record.Key) error {
	if len(save) == 0 && len(del) == 0 {
		return nil
	}
	return s.Write(ctx, func(tx *sql.Tx) error { return alertTx(tx, save, del) })
}

// AlertStates returns every persisted alert state.
func (s *Store) AlertStates(ctx context.Context) ([]record.SavedState, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT host, metric, level, since, last_value, last_check,
		notification_count, last_notified, notified_level, acknowledged, ack_by, flapping, detail, episode_start,
		prev_level, last_kind, last_episode
		FROM alert_states ORDER BY host, metric`)
	if err != nil {
		return nil, fmt.Errorf("read alert states: %w", err)
	}
	defer rows.Close()
	out := []record.SavedState{}
	for rows.Next() {
		var a record.SavedState
		if err := rows.Scan(&a.Host, &a.Metric, &a.Level, &a.Since, &a.LastValue, &a.LastCheck,
			&a.NotificationCount, &a.LastNotified, &a.NotifiedLevel, &a.Acknowledged, &a.AckBy, &a.Flapping, &a.Detail, &a.EpisodeStart,
			&a.PrevLevel, &a.LastKind, &a.LastEpisode); err != nil {
			return nil, fmt.Errorf("read alert states: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read alert states: %w", err)
	}
	return out, nil
}

// SaveSilence stores (or replaces) a silence and returns once committed.
func (s *Store) SaveSilence(ctx context.Context, sl record.Silence) error {
	err := s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT OR REPLACE INTO alert_silences (id, host, metric, created, starts, until, created_by, comment)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, sl.ID, sl.Host, sl.Metric, sl.Created, sl.Starts, sl.Until, sl.CreatedBy, sl.Comment)
		return err
	})
	if err != nil {
		return fmt.Errorf("save silence %s: %w", sl.ID, err)
	}
	return nil
}

// DeleteSilence queues the removal of a silence without waiting.
func (s *Store) DeleteSilence(id string) {
	s.Go(func(tx *sql.Tx) error { return deleteSilence(tx, id) })
}

// DeleteSilenceSync removes a silence and returns once committed. Deleting
// an unknown id is not an error.
func (s *Store) DeleteSilenceSync(ctx context.Context, id string) error {
	if err := s.Write(ctx, func(tx *sql.Tx) error { return deleteSilence(tx, id) }); err != nil {
		return fmt.Errorf("delete silence %s: %w", id, err)
	}
	return nil
}

func deleteSilence(tx *sql.Tx, id string) error {
	_, err := tx.Exec(`DELETE FROM alert_silences WHERE id = ?`, id)
	return err
}

// Silences returns every persisted silence, oldest first.
func (s *Store) Silences(ctx context.Context) ([]record.Silence, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, host, metric, created, starts, until, created_by, comment
		FROM alert_silences ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("read silences: %w", err)
	}
	defer rows.Close()
	out := []record.Silence{}
	for rows.Next() {
		var sl record.Silence
		if err := rows.Scan(&sl.ID, &sl.Host, &sl.Metric, &sl.Created, &sl.Starts, &sl.Until, &sl.CreatedBy, &sl.Comment); err != nil {
			return nil, fmt.Errorf("read silences: %w", err)
		}
		out = append(out, sl)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read silences: %w", err)
	}
	return out, nil
}

// IsDynamicHost reports whether host registered itself with the enroll
// key (alert.Inventory).
func (s *Store) IsDynamicHost(host string) bool {
	h, ok := s.Host(host)
	return ok && h.Dyn
}

// DynamicHostNames returns the names of the dynamic hosts, unsorted
// (alert.Inventory).
func (s *Store) DynamicHostNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, s.dynHosts)
	for name, h := range s.hosts {
		if h.Dyn {
			out = append(out, name)
		}
	}
	return out
}

// LatestSamples returns the newest sample in memory of each named plugin
// of host, or of every plugin of host when none is named
// (alert.Inventory).
func (s *Store) LatestSamples(host string, plugins []string) []record.Sample {
	var out []record.Sample
	if len(plugins) == 0 {
		for p, sum := range s.Plugins(host) {
			out = append(out, alertSample(p, sum.Latest))
		}
		return out
	}
	for _, p := range plugins {
		if l, err := s.Latest(host, p, 1); err == nil && len(l) == 1 {
			out = append(out, alertSample(p, l[0]))
		}
	}
	return out
}

// SamplesSince returns, host by host, the samples in memory with a
// timestamp at or after since (unix seconds), each plugin's oldest first,
// in the form the evaluator reads. A new cluster leader evaluates them at
// takeover: samples that arrived while no daemon led were stored, and
// every daemon holds them, but nobody decided on them.
func (s *Store) SamplesSince(since float64) map[string][]record.Sample {
	type hostRing struct {
		host, plugin string
		r            *ring
	}
	s.mu.RLock()
	var rs []hostRing
	for h, byPlugin := range s.hostRings {
		for p, r := range byPlugin {
			rs = append(rs, hostRing{h, p, r})
		}
	}
	s.mu.RUnlock()
	out := map[string][]record.Sample{}
	for _, hr := range rs {
		for _, smp := range hr.r.since(since) {
			out[hr.host] = append(out[hr.host], alertSample(hr.plugin, smp))
		}
	}
	return out
}

func alertSample(plugin string, smp Sample) record.Sample {
	return record.Sample{Plugin: plugin, Timestamp: smp.Timestamp, Paths: smp.Paths, Values: smp.Values}
}

// SampleObserver takes committed samples in the form the evaluator reads
// (*alert.Evaluator is one).
type SampleObserver interface {
	ObserveSamples(host string, samples []record.Sample)
}

// FeedAlerts hands every batch of samples committed from now on to o, in
// ingestion order, converted to record.Sample (the slices are shared, not
// copied). This is the path of a sample from the store to alerting. Like
// a Subscribe listener, o runs on the ingesting request's goroutine: the
// daemon passes a queue, never the evaluator itself.
func (s *Store) FeedAlerts(o SampleObserver) {
	s.Subscribe(func(ev SampleEvent) {
		batch := make([]record.Sample, len(ev.Samples))
		for i, ps := range ev.Samples {
			batch[i] = alertSample(ps.Plugin, ps.Sample)
		}
		o.ObserveSamples(ev.Host, batch)
	})
}
