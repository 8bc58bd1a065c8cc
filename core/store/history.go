package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/hbdmon/hbd/core/alert/record"
)

// Alert history: one row per alert episode of a (host, metric path), from
// the moment the metric leaves OK until it is OK again. The evaluator
// (package alert) writes the open row when the episode starts and updates
// it when its worst level changes, when it is acknowledged and when it
// ends; the API reads it. Rows are keyed by (host, metric, start), so an
// episode still open at a restart is continued, not duplicated.
func init() {
	register(migration{Version: 11, Name: "alert history", SQL: `
CREATE TABLE alert_history (
	id          INTEGER PRIMARY KEY,
	host        TEXT NOT NULL,
	metric      TEXT NOT NULL,
	start       REAL NOT NULL,
	ended       REAL,
	worst_level TEXT NOT NULL,
	peak_value  REAL,
	ack_by      TEXT NOT NULL DEFAULT '',
	text        TEXT NOT NULL DEFAULT '',
	UNIQUE (host, metric, start)
);
CREATE INDEX alert_history_start ON alert_history (start, id);
CREATE INDEX alert_history_ended ON alert_history (ended);
`})
}

// MaxEpisodes bounds the alert history: when more rows are written, the
// oldest ended episodes go, whatever the retention.
const MaxEpisodes = 100_000

// maxEpisodes is MaxEpisodes; tests lower it.
var maxEpisodes = MaxEpisodes

// MaxEpisodeText bounds the stored text of an episode.
const MaxEpisodeText = 1024

const upsertEpisode = `INSERT INTO alert_history (host, metric, start, ended, worst_level, peak_value, ack_by, text)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (host, metric, start) DO UPDATE SET
	ended = excluded.ended, worst_level = excluded.worst_level, peak_value = excluded.peak_value,
	ack_by = excluded.ack_by, text = excluded.text`

func saveEpisodes(tx *sql.Tx, eps []record.Episode) error {
	stmt, err := tx.Prepare(upsertEpisode)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, ep := range eps {
		var end, peak any
		if ep.End != 0 {
			end = ep.End
		}
		if ep.HasPeak {
			peak = ep.Peak
		}
		text := ep.Text
		if len(text) > MaxEpisodeText {
			text = text[:MaxEpisodeText]
		}
		if _, err := stmt.Exec(ep.Host, ep.Metric, ep.Start, end, ep.WorstLevel, peak, ep.AckBy, text); err != nil {
			return fmt.Errorf("save episode %s %s: %w", ep.Host, ep.Metric, err)
		}
	}
	// Ids grow with every new episode: keep the newest MaxEpisodes, and
	// every episode still open.
	_, err = tx.Exec(`DELETE FROM alert_history WHERE id <= (SELECT MAX(id) FROM alert_history) - ? AND ended IS NOT NULL`, maxEpisodes)
	return err
}

// SaveEpisodes queues inserts or updates of episodes (keyed by host,
// metric and start) without waiting for the commit; writes queued later
// win.
func (s *Store) SaveEpisodes(eps ...record.Episode) {
	if len(eps) == 0 {
		return
	}
	s.Go(func(tx *sql.Tx) error { return saveEpisodes(tx, eps) })
}

// SaveEpisodesSync is SaveEpisodes waiting for the commit.
func (s *Store) SaveEpisodesSync(ctx context.Context, eps ...record.Episode) error {
	if len(eps) == 0 {
		return nil
	}
	return s.Write(ctx, func(tx *sql.Tx) error { return saveEpisodes(tx, eps) })
}

// trimEpisodesChunk deletes up to ?2 episodes that ended before ?1
// (retention, Store.Trim); open episodes stay whatever their age.
const trimEpisodesChunk = `DELETE FROM alert_history WHERE id IN (SELECT id FROM alert_history WHERE ended IS NOT NULL AND ended < ?1 LIMIT ?2)`

const episodeColumns = `id, host, metric, start, ended, worst_level, peak_value, ack_by, text`

func scanEpisodes(rows *sql.Rows) ([]record.Episode, error) {
	defer rows.Close()
	out := []record.Episode{}
	for rows.Next() {
		var ep record.Episode
		var end, peak sql.NullFloat64
		if err := rows.Scan(&ep.ID, &ep.Host, &ep.Metric, &ep.Start, &end, &ep.WorstLevel, &peak, &ep.AckBy, &ep.Text); err != nil {
			return nil, fmt.Errorf("read alert history: %w", err)
		}
		ep.End = end.Float64
		ep.Peak, ep.HasPeak = peak.Float64, peak.Valid
		out = append(out, ep)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read alert history: %w", err)
	}
	return out, nil
}

// OpenEpisodes returns every episode that has not ended, oldest first.
func (s *Store) OpenEpisodes(ctx context.Context) ([]record.Episode, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+episodeColumns+` FROM alert_history WHERE ended IS NULL ORDER BY start, id`)
	if err != nil {
		return nil, fmt.Errorf("read alert history: %w", err)
	}
	return scanEpisodes(rows)
}

// Episodes returns the episodes q selects, newest (latest start) first.
func (s *Store) Episodes(ctx context.Context, q record.EpisodeQuery) ([]record.Episode, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	var where []string
	var args []any
	if q.Host != "" {
		where = append(where, "host = ?")
		args = append(args, q.Host)
	}
	if q.Hosts != nil {
		if len(q.Hosts) == 0 {
			return []record.Episode{}, nil
		}
		where = append(where, "host IN ("+strings.TrimSuffix(strings.Repeat("?,", len(q.Hosts)), ",")+")")
		for _, h := range q.Hosts {
			args = append(args, h)
		}
	}
	if q.Since > 0 {
		where = append(where, "(ended IS NULL OR ended >= ?)")
		args = append(args, q.Since)
	}
	if q.Until > 0 {
		where = append(where, "start <= ?")
		args = append(args, q.Until)
	}
	switch q.State {
	case record.EpisodesAll:
	case record.EpisodesOpen:
		where = append(where, "ended IS NULL")
	case record.EpisodesResolved:
		where = append(where, "ended IS NOT NULL")
	default:
		return nil, fmt.Errorf("read alert history: unknown episode state %q", q.State)
	}
	if c := q.After; c != nil {
		where = append(where, "(start < ? OR (start = ? AND id < ?))")
		args = append(args, c.Start, c.Start, c.ID)
	}
	query := `SELECT ` + episodeColumns + ` FROM alert_history`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY start DESC, id DESC LIMIT ?"
	args = append(args, q.Limit)
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read alert history: %w", err)
	}
	return scanEpisodes(rows)
}
