package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/hbdmon/hbd/core/heartbeat/record"
)

func init() {
	register(migration{Version: 2, Name: "host heartbeats", SQL: `
CREATE TABLE host_heartbeats (
	host      TEXT PRIMARY KEY,
	families  TEXT NOT NULL,
	last_seen REAL NOT NULL
);
`})
}

// maxHeartbeatFamilies bounds what is read back per host: a row with more
// is not the daemon's.
const maxHeartbeatFamilies = 8

// HostHeartbeats returns every persisted host heartbeat record (the
// record.HeartbeatsStore of the daemon's heartbeat.Book), sorted by
// host. A row that cannot be read is skipped and logged, so one bad row
// cannot keep the daemon from starting.
func (s *Store) HostHeartbeats(ctx context.Context) ([]record.Heartbeats, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT host, families FROM host_heartbeats`)
	if err != nil {
		return nil, fmt.Errorf("read host heartbeats: %w", err)
	}
	defer rows.Close()
	var out []record.Heartbeats
	for rows.Next() {
		var h record.Heartbeats
		var fams string
		if err := rows.Scan(&h.Host, &fams); err != nil {
			return nil, fmt.Errorf("read host heartbeats: %w", err)
		}
		if err := json.Unmarshal([]byte(fams), &h.Families); err != nil || len(h.Families) > maxHeartbeatFamilies {
			s.log.Warn("skipping unreadable host heartbeat record", "host", h.Host, "error", err)
			continue
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read host heartbeats: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out, nil
}

// SaveHostHeartbeats queues the records for writing (replacing what is
// stored for their hosts) through the writer, without waiting: the caller
// may be on a hot path. A record without families is skipped. Records
// queued before Close are written by it.
func (s *Store) SaveHostHeartbeats(hs []record.Heartbeats) {
	type row struct {
		host, families string
		lastSeen       float64
	}
	rows := make([]row, 0, len(hs))
	for _, h := range hs {
		if len(h.Families) == 0 {
			continue
		}
		b, err := json.Marshal(h.Families)
		if err != nil {
			s.log.Warn("cannot encode host heartbeat record", "host", h.Host, "error", err)
			continue
		}
		rows = append(rows, row{h.Host, string(b), h.LastSeen()})
	}
	if len(rows) == 0 {
		return
	}
	s.Go(func(tx *sql.Tx) error {
		for _, r := range rows {
			if _, err := tx.Exec(`INSERT INTO host_heartbeats (host, families, last_seen) VALUES (?, ?, ?)
				ON CONFLICT (host) DO UPDATE SET families = excluded.families, last_seen = excluded.last_seen`,
				r.host, r.families, r.lastSeen); err != nil {
				return fmt.Errorf("save host heartbeats of %s: %w", r.host, err)
			}
		}
		return nil
	})
}

// DeleteHostHeartbeats queues the removal of the records of hosts, for
// instance when they were removed from the configuration.
func (s *Store) DeleteHostHeartbeats(hosts ...string) {
	if len(hosts) == 0 {
		return
	}
	hosts = append([]string(nil), hosts...)
	s.Go(func(tx *sql.Tx) error {
		for _, h := range hosts {
			if _, err := tx.Exec(`DELETE FROM host_heartbeats WHERE host = ?`, h); err != nil {
				return fmt.Errorf("delete host heartbeats of %s: %w", h, err)
			}
		}
		return nil
	})
}
