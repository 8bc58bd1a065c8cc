package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hbdmon/hbd/core/safetext"
)

// Message is one journal entry.
type Message struct {
	Time float64 `json:"time"`
	Host string  `json:"host"`
	Msg  string  `json:"msg"`
}

// MessageQuery filters journal reads. Zero fields mean no filter.
type MessageQuery struct {
	Limit  int
	Host   string
	Before float64  // only entries strictly older than this unix time
	Hosts  []string // when non-nil, only entries of these hosts (access filtering)
}

// MaxMessageBytes bounds one journal line.
const MaxMessageBytes = 2048

// Journal records msg about host (empty for daemon-wide entries) without
// waiting for the commit.
func (s *Store) Journal(host, msg string) {
	m := Message{Time: toUnix(time.Now()), Host: host, Msg: clip(msg)}
	s.Go(m.insert)
	s.publishMessage(m)
}

// JournalSync records msg and returns once it is committed.
func (s *Store) JournalSync(ctx context.Context, host, msg string) error {
	m := Message{Time: toUnix(time.Now()), Host: host, Msg: clip(msg)}
	if err := s.Write(ctx, m.insert); err != nil {
		return err
	}
	s.publishMessage(m)
	return nil
}

func (m Message) insert(tx *sql.Tx) error {
	_, err := tx.Exec(`INSERT INTO journal (ts, host, msg) VALUES (?, ?, ?)`, m.Time, m.Host, m.Msg)
	return err
}

// SubscribeJournal registers fn to be called with every journal entry as it
// is recorded (the live feed). fn must not block or write the journal.
func (s *Store) SubscribeJournal(fn func(Message)) {
	s.listenMu.Lock()
	defer s.listenMu.Unlock()
	s.journalListeners = append(s.journalListeners, fn)
}

func (s *Store) publishMessage(m Message) { callAll(&s.listenMu, &s.journalListeners, m) }

// clip bounds a journal line and makes it safe to show: control and
// bidirectional formatting characters (from silence comments, remote
// answers, ...) become U+FFFD, so a line cannot rewrite a terminal or read
// differently from what it holds.
func clip(msg string) string {
	if len(msg) > MaxMessageBytes {
		cut := MaxMessageBytes
		for cut > MaxMessageBytes-utf8.UTFMax && !utf8.RuneStart(msg[cut]) {
			cut-- // not in the middle of a character
		}
		msg = msg[:cut]
	}
	return safetext.Clean(msg)
}

// Messages returns journal entries, newest first.
func (s *Store) Messages(ctx context.Context, q MessageQuery) ([]Message, error) {
	if q.Limit <= 0 {
		q.Limit = 30
	}
	var where []string
	var args []any
	if q.Host != "" {
		where = append(where, "host = ?")
		args = append(args, q.Host)
	}
	if q.Before > 0 {
		where = append(where, "ts < ?")
		args = append(args, q.Before)
	}
	if q.Hosts != nil {
		if len(q.Hosts) == 0 {
			return []Message{}, nil
		}
		where = append(where, "host IN ("+strings.TrimSuffix(strings.Repeat("?,", len(q.Hosts)), ",")+")")
		for _, h := range q.Hosts {
			args = append(args, h)
		}
	}
	query := "SELECT ts, host, msg FROM journal"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY ts DESC, id DESC LIMIT ?"
	args = append(args, q.Limit)
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	defer rows.Close()
	out := []Message{}
	for rows.Next() {
		var m Message
		if err := rows.Scan(&m.Time, &m.Host, &m.Msg); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
