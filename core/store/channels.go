package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hbdmon/hbd/core/channels/channelrecord"
	"github.com/hbdmon/hbd/core/dispatch/dispatchrecord"
)

// Notification persistence: channels created through the API (the
// channels.Repository of package channels), and the delivery queue
// (package dispatch), so deliveries still pending when the
// daemon stops are attempted again after a restart. Migration versions
// 20–29 belong to it.
func init() {
	register(migration{Version: 20, Name: "notification channels", SQL: `
CREATE TABLE notification_channels (
	name      TEXT PRIMARY KEY,
	type      TEXT NOT NULL,
	owner     TEXT NOT NULL DEFAULT '',
	private   INTEGER NOT NULL DEFAULT 0,
	min_level TEXT NOT NULL,
	hosts     TEXT NOT NULL DEFAULT '[]',
	fields    TEXT NOT NULL DEFAULT '{}',
	created   INTEGER NOT NULL,
	updated   INTEGER NOT NULL
);
`})
	register(migration{Version: 21, Name: "notification queue", SQL: `
CREATE TABLE notify_queue (
	id       TEXT PRIMARY KEY,
	channel  TEXT NOT NULL,
	event    TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_at  INTEGER NOT NULL,
	created  INTEGER NOT NULL
);
CREATE INDEX notify_queue_order ON notify_queue (created, id);
`})
}

// The user channels' change counter (PostgreSQL only: the daemons of a
// cluster share the channels): one row whose version every
// PutUserChannel and DeleteUserChannel increments in its own
// transaction, so a daemon learns that another changed the channels from
// one tiny read (UserChannelsVersion) and reloads them only then.
func init() {
	registerPG(migration{Version: 48, Name: "user channel version", SQL: `
CREATE TABLE channel_version (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version BIGINT NOT NULL
);
INSERT INTO channel_version (id, version) VALUES (1, 0);
`})
}

// bumpChannelVersion increments the change counter in tx (PostgreSQL).
func (s *Store) bumpChannelVersion(tx *sql.Tx) error {
	if !s.pg {
		return nil
	}
	_, err := tx.Exec(`UPDATE channel_version SET version = version + 1 WHERE id = 1`)
	return err
}

// UserChannelsVersion returns the user channels' change counter: it
// differs from an earlier answer once a put or delete committed since (by
// any daemon on the database). Read it before UserChannels, so a change
// committed in between is seen again on the next read. SQLite:
// ErrNeedsPostgres (one daemon, whose registry makes every change).
func (s *Store) UserChannelsVersion(ctx context.Context) (int64, error) {
	if !s.pg {
		return 0, ErrNeedsPostgres
	}
	var v int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT version FROM channel_version WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read notification channel version: %w", err)
	}
	return v, nil
}

// UserChannels returns every channel created through the API, by name
// (Source SourceUser).
func (s *Store) UserChannels(ctx context.Context) ([]channelrecord.Channel, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT name, type, owner, private, min_level, hosts, fields, created, updated
		FROM notification_channels ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read notification channels: %w", err)
	}
	defer rows.Close()
	out := []channelrecord.Channel{}
	for rows.Next() {
		c := channelrecord.Channel{Source: channelrecord.SourceUser}
		var hosts, fields string
		var created, updated int64
		if err := rows.Scan(&c.Name, &c.Type, &c.Owner, &c.Private, &c.MinLevel, &hosts, &fields, &created, &updated); err != nil {
			return nil, fmt.Errorf("read notification channels: %w", err)
		}
		if err := json.Unmarshal([]byte(hosts), &c.Hosts); err != nil {
			return nil, fmt.Errorf("read notification channel %s: hosts: %w", c.Name, err)
		}
		if err := json.Unmarshal([]byte(fields), &c.Fields); err != nil {
			return nil, fmt.Errorf("read notification channel %s: fields: %w", c.Name, err)
		}
		if c.Fields == nil {
			c.Fields = map[string]string{}
		}
		c.Created, c.Updated = time.Unix(0, created), time.Unix(0, updated)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read notification channels: %w", err)
	}
	return out, nil
}

// PutUserChannel creates or replaces a channel and returns once committed.
func (s *Store) PutUserChannel(ctx context.Context, c channelrecord.Channel) error {
	hosts := c.Hosts
	if hosts == nil {
		hosts = []string{}
	}
	hb, err := json.Marshal(hosts)
	if err != nil {
		return fmt.Errorf("save notification channel %s: %w", c.Name, err)
	}
	fields := c.Fields
	if fields == nil {
		fields = map[string]string{}
	}
	fb, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("save notification channel %s: %w", c.Name, err)
	}
	err = s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO notification_channels (name, type, owner, private, min_level, hosts, fields, created, updated)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET type = excluded.type, owner = excluded.owner, private = excluded.private,
			min_level = excluded.min_level, hosts = excluded.hosts, fields = excluded.fields, updated = excluded.updated`,
			c.Name, c.Type, c.Owner, c.Private, c.MinLevel, string(hb), string(fb), c.Created.UnixNano(), c.Updated.UnixNano())
		if err != nil {
			return err
		}
		return s.bumpChannelVersion(tx)
	})
	if err != nil {
		return fmt.Errorf("save notification channel %s: %w", c.Name, err)
	}
	return nil
}

// DeleteUserChannel removes a channel and its pending deliveries and
// returns once committed. Deleting an unknown name is not an error.
func (s *Store) DeleteUserChannel(ctx context.Context, name string) error {
	err := s.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`DELETE FROM notification_channels WHERE name = ?`, name); err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM notify_queue WHERE channel = ?`, name); err != nil {
			return err
		}
		return s.bumpChannelVersion(tx)
	})
	if err != nil {
		return fmt.Errorf("delete notification channel %s: %w", name, err)
	}
	return nil
}

// QueueDelivery queues the insertion of a pending delivery without waiting
// for the commit. Writes run in the order they are queued, so a later
// UpdateDelivery or DeleteDelivery of the same id always applies after it.
// It records no (event, channel) pair: the dispatcher uses QueueDeliveries.
func (s *Store) QueueDelivery(d dispatchrecord.Delivery) {
	s.Go(func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT OR REPLACE INTO notify_queue (id, channel, event, attempts, next_at, created) VALUES (?, ?, ?, ?, ?, ?)`,
			d.ID, d.Channel, string(d.Event), d.Attempts, d.NextAt.UnixNano(), d.Created.UnixNano())
		return err
	})
}

// UpdateDelivery queues the recording of a failed attempt: the attempt
// count and when the next one is due.
func (s *Store) UpdateDelivery(id string, attempts int, nextAt time.Time) {
	s.Go(func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE notify_queue SET attempts = ?, next_at = ? WHERE id = ?`, attempts, nextAt.UnixNano(), id)
		return err
	})
}

// DeleteDelivery queues the removal of a delivery that succeeded or was
// given up.
func (s *Store) DeleteDelivery(id string) {
	s.Go(func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM notify_queue WHERE id = ?`, id)
		return err
	})
}

// PendingDeliveries returns every queued delivery, oldest first.
func (s *Store) PendingDeliveries(ctx context.Context) ([]dispatchrecord.Delivery, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, channel, event, attempts, next_at, created FROM notify_queue ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("read notification queue: %w", err)
	}
	defer rows.Close()
	out := []dispatchrecord.Delivery{}
	for rows.Next() {
		var d dispatchrecord.Delivery
		var ev string
		var next int64
		var created int64
		if err := rows.Scan(&d.ID, &d.Channel, &ev, &d.Attempts, &next, &created); err != nil {
			return nil, fmt.Errorf("read notification queue: %w", err)
		}
		d.Event = []byte(ev)
		d.NextAt = time.Unix(0, next)
		d.Created = time.Unix(0, created)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read notification queue: %w", err)
	}
	return out, nil
}
