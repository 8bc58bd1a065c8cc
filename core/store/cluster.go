package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// The cluster's own tables (issue 15; PostgreSQL only): which daemons
// share the database and when each epoch of the leader lease began. The
// leader loop (package cluster) writes them; /api/0/cluster reads them.
// Migration 41 belongs to it. "leading" is a reserved word in
// PostgreSQL: always quote it. heartbeat_flush and delivery_backlog are
// filled by the heartbeat and delivery services of each node.
func init() {
	registerPG(migration{Version: 41, Name: "cluster nodes and epochs", SQL: `
CREATE TABLE cluster_nodes (
	node             TEXT COLLATE "C" PRIMARY KEY,
	address          TEXT NOT NULL DEFAULT '',
	started          TIMESTAMPTZ NOT NULL,
	last_seen        TIMESTAMPTZ NOT NULL,
	"leading"        BOOLEAN NOT NULL DEFAULT FALSE,
	epoch            BIGINT NOT NULL DEFAULT 0,
	heartbeat_flush  TIMESTAMPTZ,
	delivery_backlog BIGINT
);
CREATE TABLE cluster_epochs (
	epoch  BIGINT PRIMARY KEY,
	holder TEXT NOT NULL,
	since  TIMESTAMPTZ NOT NULL
);
`})
}

// ClusterNode is one daemon of a cluster as cluster_nodes records it.
type ClusterNode struct {
	Node     string
	Address  string // where its HTTP API listens, as it announced it
	Started  time.Time
	LastSeen time.Time // its last lease attempt (database clock)
	Leading  bool      // it said so at LastSeen
	Epoch    int64     // the epoch it leads (or last led); 0 never
	// HeartbeatFlush is its last coalesced heartbeat write and
	// DeliveryBacklog its undelivered notifications; nil until the
	// services that own them report.
	HeartbeatFlush  *time.Time
	DeliveryBacklog *int64
}

// ClusterEpoch is one epoch of the leader lease: who took it, and when.
type ClusterEpoch struct {
	Epoch  int64
	Holder string
	Since  time.Time
}

// NodeSeen records one lease attempt of node (upserting its row with the
// database's clock), with its last heartbeat flush and delivery backlog
// when n carries them (nil keeps the recorded ones). It uses the lease's own connection, so it never
// waits for the writer.
func (s *Store) NodeSeen(ctx context.Context, n ClusterNode) error {
	if !s.pg {
		return ErrNoLease
	}
	_, err := s.ldb.ExecContext(ctx, `
INSERT INTO cluster_nodes (node, address, started, last_seen, "leading", epoch, heartbeat_flush, delivery_backlog)
VALUES ($1, $2, $3, clock_timestamp(), $4::int <> 0, $5, $6, $7)
ON CONFLICT (node) DO UPDATE SET address = EXCLUDED.address, started = EXCLUDED.started,
	last_seen = EXCLUDED.last_seen, "leading" = EXCLUDED."leading",
	epoch = CASE WHEN EXCLUDED.epoch > 0 THEN EXCLUDED.epoch ELSE cluster_nodes.epoch END,
	heartbeat_flush = COALESCE(EXCLUDED.heartbeat_flush, cluster_nodes.heartbeat_flush),
	delivery_backlog = COALESCE(EXCLUDED.delivery_backlog, cluster_nodes.delivery_backlog)`,
		n.Node, n.Address, n.Started, n.Leading, n.Epoch, n.HeartbeatFlush, n.DeliveryBacklog)
	if err != nil {
		return fmt.Errorf("cluster node %s: %w", n.Node, err)
	}
	return nil
}

// RecordEpoch records that holder took the lease at since with epoch
// (once per epoch: a second call changes nothing).
func (s *Store) RecordEpoch(ctx context.Context, e ClusterEpoch) error {
	if !s.pg {
		return ErrNoLease
	}
	_, err := s.ldb.ExecContext(ctx, `INSERT INTO cluster_epochs (epoch, holder, since) VALUES ($1, $2, $3) ON CONFLICT (epoch) DO NOTHING`,
		e.Epoch, e.Holder, e.Since)
	if err != nil {
		return fmt.Errorf("cluster epoch %d: %w", e.Epoch, err)
	}
	return nil
}

// ClusterNodes returns every recorded daemon, by name.
func (s *Store) ClusterNodes(ctx context.Context) ([]ClusterNode, error) {
	if !s.pg {
		return nil, ErrNoLease
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT node, address, started, last_seen, "leading", epoch, heartbeat_flush, delivery_backlog
		FROM cluster_nodes ORDER BY node`)
	if err != nil {
		return nil, fmt.Errorf("cluster nodes: %w", err)
	}
	defer rows.Close()
	var out []ClusterNode
	for rows.Next() {
		var n ClusterNode
		var flush sql.NullTime
		var backlog sql.NullInt64
		if err := rows.Scan(&n.Node, &n.Address, &n.Started, &n.LastSeen, &n.Leading, &n.Epoch, &flush, &backlog); err != nil {
			return nil, fmt.Errorf("cluster nodes: %w", err)
		}
		if flush.Valid {
			n.HeartbeatFlush = &flush.Time
		}
		if backlog.Valid {
			n.DeliveryBacklog = &backlog.Int64
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// ClusterEpochs returns the newest n epochs, newest first.
func (s *Store) ClusterEpochs(ctx context.Context, n int) ([]ClusterEpoch, error) {
	if !s.pg {
		return nil, ErrNoLease
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT epoch, holder, since FROM cluster_epochs ORDER BY epoch DESC LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("cluster epochs: %w", err)
	}
	defer rows.Close()
	var out []ClusterEpoch
	for rows.Next() {
		var e ClusterEpoch
		if err := rows.Scan(&e.Epoch, &e.Holder, &e.Since); err != nil {
			return nil, fmt.Errorf("cluster epochs: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// LeaseNow returns the lease row as it stands (holder "" when nobody
// ever took it) and whether it is expired on the database's clock.
func (s *Store) LeaseNow(ctx context.Context) (g LeaseGrant, expired bool, err error) {
	if !s.pg {
		return g, false, ErrNoLease
	}
	err = s.rdb.QueryRowContext(ctx, `SELECT holder, epoch, since, expires <= clock_timestamp() FROM leader_lease WHERE id = 1`).
		Scan(&g.Holder, &g.Epoch, &g.Since, &expired)
	if err == sql.ErrNoRows {
		return LeaseGrant{}, true, nil
	}
	return g, expired, err
}

// retentionGate is the fence of the retention trims (SetRetentionFence).
type retentionGate struct{ fn FenceFunc }

// SetRetentionFence makes retention a leader-only job: a trim runs only
// while fn says this daemon leads, and each of its transactions checks
// the fence first. nil (the default) is a single daemon: always.
func (s *Store) SetRetentionFence(fn FenceFunc) { s.trimGate.Store(&retentionGate{fn}) }

// trimFence is the fence for one retention transaction.
func (s *Store) trimFence() (Fence, bool) {
	g := s.trimGate.Load()
	if g == nil {
		return Fence{}, true
	}
	return g.fn.Leading()
}
