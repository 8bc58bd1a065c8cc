package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hbdmon/hbd/core/alert/record"
	"github.com/hbdmon/hbd/core/auth/authrecord"
	"github.com/hbdmon/hbd/core/channels/channelrecord"
	"github.com/hbdmon/hbd/core/dispatch/dispatchrecord"
	hbrecord "github.com/hbdmon/hbd/core/heartbeat/record"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

// fillSQLite writes a SQLite store in dir through the store's own API: two
// hosts with samples of several plugins, the journal (with rows removed,
// so SQLite's AUTOINCREMENT counter is past the largest id), alert states,
// a silence, episodes, heartbeat states, units, a user channel with a
// secret, a pending delivery, users and sessions.
func fillSQLite(t *testing.T, dir string, samples int) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.EnsureHost(ctx, "web01", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureHost(ctx, "dyn01", true); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < samples; i++ {
		ts := 1.7e9 + float64(i)*10 + 0.25
		batch := []PluginSample{
			sample("cpu_monitor", ts, "cpu_percent", float64(i%100)+0.5, "load1", math.Pi),
			sample("disk_monitor", ts, "/.percent", 42.0, "/var.percent", float64(i)),
		}
		if err := s.AppendSamples(ctx, "web01", batch); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if err := s.AppendSamples(ctx, "dyn01", []PluginSample{sample("memory_monitor", ts, "percent", 12.5)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 5; i++ {
		if err := s.JournalSync(ctx, "web01", fmt.Sprintf("line %d — ünïcode", i)); err != nil {
			t.Fatal(err)
		}
	}
	// The newest journal row goes: SQLite never gives its id again.
	if err := s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM journal WHERE id = (SELECT max(id) FROM journal)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	states := []record.SavedState{
		{Host: "web01", Metric: "cpu_monitor.cpu_percent", Level: "WARNING", Since: 100, LastValue: 85.5, LastCheck: 160,
			NotificationCount: 2, LastNotified: 150, NotifiedLevel: "WARNING", Acknowledged: true, AckBy: "alice", EpisodeStart: 99},
		{Host: "web01", Metric: "heartbeat.ipv6", Level: "CRITICAL", Since: 90, LastValue: 2, LastCheck: 90, Detail: "DOWN", Flapping: true, EpisodeStart: 80},
	}
	if err := s.SaveAlertStatesSync(ctx, states, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSilence(ctx, record.Silence{ID: "sil1", Host: "web*", Metric: "**", Created: 10, Starts: 20, Until: 7210, CreatedBy: "bob", Comment: "maintenance"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveEpisodesSync(ctx,
		record.Episode{Host: "web01", Metric: "cpu_monitor.cpu_percent", Start: 99, WorstLevel: "CRITICAL", Peak: 97.5, HasPeak: true, Text: "web01 cpu 97.5"},
		record.Episode{Host: "web01", Metric: "heartbeat.host", Start: 50, End: 60, WorstLevel: "CRITICAL"},
	); err != nil {
		t.Fatal(err)
	}
	s.RecordState("web01", "ipv4", "DOWN", 1.7e9)
	s.RecordState("web01", "ipv4", "UP", 1.7e9+30)
	s.SaveHostHeartbeats([]hbrecord.Heartbeats{{Host: "web01", Families: map[string]float64{"ipv4": 1.7e9 + 30, "ipv6": 1.7e9}}})
	now := time.Unix(1711234567, 123456789)
	hook := channelrecord.Channel{Name: "hook", Type: "webhook", Owner: "alice", Private: true, MinLevel: "CRITICAL",
		Hosts: []string{"web*"}, Fields: map[string]string{"url": "https://example.com/h", "secret": "s3cr3t-chan"},
		Source: channelrecord.SourceUser, Created: now, Updated: now}
	if err := s.PutUserChannel(ctx, hook); err != nil {
		t.Fatal(err)
	}
	ep := dispatchrecord.EpisodeKey{Host: "web01", Metric: "cpu_monitor.cpu_percent", StartMs: 99000}
	if _, err := s.QueueDeliveries(ctx, "ev1", ep, []dispatchrecord.Delivery{
		{ID: "d1", Channel: "hook", Event: []byte(`{"ID":"ev1"}`), NextAt: now, Created: now},
	}); err != nil {
		t.Fatal(err)
	}
	name := "Alice A."
	if err := s.PutUserOverlay(ctx, authrecord.UserOverlay{Name: "alice", DisplayName: &name, PasswordHash: "$2a$10$hash", BaseHash: "$2a$10$base", Updated: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, authrecord.Session{Hash: "tokhash", User: "alice", Created: now, Expires: now.Add(time.Hour), LastUsed: now, Client: "curl"}); err != nil {
		t.Fatal(err)
	}
	// The writer's fire-and-forget writes commit before Close returns.
}

// rawRows reads a table's rows, every column as text, sorted: the two
// backends compared cell by cell.
func rawRows(t *testing.T, db *sql.DB, table string, cols []string) []string {
	t.Helper()
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = `"` + c + `"`
	}
	rows, err := db.Query(`SELECT ` + strings.Join(q, ", ") + ` FROM ` + table)
	if err != nil {
		t.Fatalf("%s: %v", table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		cells := make([]string, len(cols))
		for i, v := range vals {
			switch v := v.(type) {
			case []byte:
				cells[i] = fmt.Sprintf("%x", v)
			case float64:
				cells[i] = fmt.Sprint(v)
			case int64:
				cells[i] = fmt.Sprint(float64(v)) // 3 in an INTEGER column, 3.0 in a REAL one
			case int32:
				cells[i] = fmt.Sprint(float64(v))
			default:
				cells[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(cells, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func sqliteColumns(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		rows.Scan(&c)
		cols = append(cols, c)
	}
	return cols
}

func pgCount(t *testing.T, db *sql.DB, table string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// TestMigrateToPostgresCopiesEveryTable: a SQLite store written through
// the store's API is copied into an empty PostgreSQL database; every
// copied table holds exactly the source's rows (compared cell by cell and
// read back through the store's API), the cluster's tables are in their
// initial state, a second run is refused without changes, and rows
// written afterwards get fresh ids.
func TestMigrateToPostgresCopiesEveryTable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fillSQLite(t, dir, 300)
	dsn := pgtest.DSN(t)

	res, err := MigrateToPostgres(ctx, dir, dsn, MigrateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != filepath.Join(dir, FileName) || !strings.HasPrefix(res.Target, "postgres ") {
		t.Errorf("source %q, target %q", res.Source, res.Target)
	}
	copied := map[string]int64{}
	for _, tc := range res.Tables {
		copied[tc.Table] = tc.Rows
	}
	for table, want := range map[string]int64{"hosts": 2, "series": 3, "samples": 300*2 + 100, "journal": 4 + 1, "alert_states": 2,
		"alert_silences": 1, "alert_history": 2, "notification_channels": 1, "notify_queue": 1, "notify_sent": 1,
		"notify_episodes": 1, "user_overlay": 1, "sessions": 1, "host_states": 2, "host_heartbeats": 1} {
		if copied[table] != want {
			t.Errorf("%s: %d rows copied, want %d", table, copied[table], want)
		}
	}
	if len(res.Tables) != len(copyTables) {
		t.Errorf("summary has %d tables, want %d", len(res.Tables), len(copyTables))
	}

	src, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	pg, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	for _, table := range copyTables {
		cols := sqliteColumns(t, src, table)
		a, b := rawRows(t, src, table, cols), rawRows(t, pg, table, cols)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s differs:\nsqlite   %q\npostgres %q", table, a, b)
		}
	}
	for _, table := range clusterTables {
		if n := pgCount(t, pg, table); n != 0 {
			t.Errorf("cluster table %s has %d rows, want none", table, n)
		}
	}
	var cv int64
	if err := pg.QueryRow(`SELECT version FROM channel_version WHERE id = 1`).Scan(&cv); err != nil || cv != 0 {
		t.Errorf("channel_version = %d, %v; want its initial 0", cv, err)
	}

	// Through the store's API, as a daemon reads it.
	s1, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := OpenPostgres(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	same := func(what string, a, b any, errA, errB error) {
		t.Helper()
		if errA != nil || errB != nil {
			t.Fatalf("%s: %v / %v", what, errA, errB)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s:\nsqlite   %+v\npostgres %+v", what, a, b)
		}
	}
	if !reflect.DeepEqual(s1.Hosts(), s2.Hosts()) {
		t.Errorf("hosts: %+v / %+v", s1.Hosts(), s2.Hosts())
	}
	for _, hp := range [][2]string{{"web01", "cpu_monitor"}, {"web01", "disk_monitor"}, {"dyn01", "memory_monitor"}} {
		a, ea := s1.History(ctx, hp[0], hp[1], 0, math.MaxFloat64, 10000)
		b, eb := s2.History(ctx, hp[0], hp[1], 0, math.MaxFloat64, 10000)
		same("samples of "+hp[0]+"/"+hp[1], a, b, ea, eb)
		if len(a) == 0 {
			t.Errorf("no samples of %v", hp)
		}
		la, _ := s1.Latest(hp[0], hp[1], 10)
		lb, _ := s2.Latest(hp[0], hp[1], 10)
		same("latest of "+hp[0]+"/"+hp[1], la, lb, nil, nil)
	}
	now := time.Unix(1711234567, 0)
	for _, r := range []struct {
		what string
		read func(s *Store) (any, error)
	}{
		{"alert states", func(s *Store) (any, error) { return s.AlertStates(ctx) }},
		{"journal", func(s *Store) (any, error) { return s.Messages(ctx, MessageQuery{Limit: 100}) }},
		{"silences", func(s *Store) (any, error) { return s.Silences(ctx) }},
		{"user channels", func(s *Store) (any, error) { return s.UserChannels(ctx) }},
		{"episodes", func(s *Store) (any, error) {
			return s.Episodes(ctx, record.EpisodeQuery{State: record.EpisodesAll, Limit: 100})
		}},
		{"deliveries", func(s *Store) (any, error) { return s.PendingDeliveries(ctx) }},
		{"sessions", func(s *Store) (any, error) { return s.Sessions(ctx, now) }},
		{"users", func(s *Store) (any, error) { return s.UserOverlays(ctx) }},
		{"heartbeats", func(s *Store) (any, error) { return s.HostHeartbeats(ctx) }},
		{"heartbeat states", func(s *Store) (any, error) { return s.States(ctx, "web01", "ipv4", 0) }},
	} {
		a, ea := r.read(s1)
		b, eb := r.read(s2)
		same(r.what, a, b, ea, eb)
	}

	// A second run into the now non-empty database is refused and
	// changes nothing.
	before := rawRows(t, pg, "journal", []string{"id", "ts", "host", "msg"})
	if _, err := MigrateToPostgres(ctx, dir, dsn, MigrateOptions{}); !errors.Is(err, ErrTargetNotEmpty) || !strings.Contains(err.Error(), "hosts") {
		t.Fatalf("second run: %v, want ErrTargetNotEmpty naming a table", err)
	}
	if after := rawRows(t, pg, "journal", []string{"id", "ts", "host", "msg"}); !reflect.DeepEqual(before, after) {
		t.Fatal("a refused run changed the journal")
	}
	if n := pgCount(t, pg, "samples"); n != copied["samples"] {
		t.Fatalf("a refused run changed samples: %d rows", n)
	}

	// Rows written after the copy get ids past every copied one (and past
	// the journal id SQLite had already used for the deleted row).
	var maxJournal, seq, maxSeries, maxEpisode int64
	src.QueryRow(`SELECT max(id) FROM journal`).Scan(&maxJournal)
	src.QueryRow(`SELECT seq FROM sqlite_sequence WHERE name = 'journal'`).Scan(&seq)
	src.QueryRow(`SELECT max(id) FROM series`).Scan(&maxSeries)
	src.QueryRow(`SELECT max(id) FROM alert_history`).Scan(&maxEpisode)
	if seq <= maxJournal {
		t.Fatalf("test setup: sqlite_sequence %d not past max(id) %d", seq, maxJournal)
	}
	if err := s2.JournalSync(ctx, "web01", "after the move"); err != nil {
		t.Fatal(err)
	}
	if err := s2.AppendSamples(ctx, "web01", []PluginSample{sample("net_monitor", 1.8e9, "rx", 1.0)}); err != nil {
		t.Fatalf("a new series after the copy: %v", err)
	}
	if err := s2.AppendSamples(ctx, "web01", []PluginSample{sample("cpu_monitor", 1.8e9, "cpu_percent", 1.0, "load1", 2.0)}); err != nil {
		t.Fatalf("a new sample after the copy: %v", err)
	}
	if err := s2.SaveEpisodesSync(ctx, record.Episode{Host: "web01", Metric: "net_monitor.rx", Start: 1.8e9, WorstLevel: "WARNING"}); err != nil {
		t.Fatalf("a new episode after the copy: %v", err)
	}
	var newJournal, newSeries, newEpisode int64
	pg.QueryRow(`SELECT id FROM journal WHERE msg = 'after the move'`).Scan(&newJournal)
	pg.QueryRow(`SELECT id FROM series WHERE plugin = 'net_monitor'`).Scan(&newSeries)
	pg.QueryRow(`SELECT id FROM alert_history WHERE metric = 'net_monitor.rx'`).Scan(&newEpisode)
	if newJournal <= seq || newSeries <= maxSeries || newEpisode <= maxEpisode {
		t.Errorf("new ids: journal %d (used up to %d), series %d (copied up to %d), episode %d (copied up to %d)",
			newJournal, seq, newSeries, maxSeries, newEpisode, maxEpisode)
	}
	msgs, err := s2.Messages(ctx, MessageQuery{Limit: 1})
	if err != nil || len(msgs) != 1 || msgs[0].Msg != "after the move" {
		t.Errorf("newest journal line after the copy: %+v, %v", msgs, err)
	}
	h, err := s2.History(ctx, "web01", "cpu_monitor", 1.8e9, 1.8e9, 10)
	if err != nil || len(h) != 1 {
		t.Errorf("new sample: %+v, %v", h, err)
	}
}

// TestMigrateToPostgresKnowsEveryTable: every table of either schema is
// either copied or named as the cluster's own, so a new table added by a
// migration must be placed in one list or the other.
func TestMigrateToPostgresKnowsEveryTable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	dsn := pgtest.DSN(t)
	p, err := OpenPostgres(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	known := map[string]bool{"schema_migrations": true, "channel_version": true}
	for _, t := range copyTables {
		known[t] = true
	}
	for _, t := range clusterTables {
		known[t] = true
	}
	src, _ := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName)+"?mode=ro")
	defer src.Close()
	pg, _ := sql.Open("pgx", dsn)
	defer pg.Close()
	for _, q := range []struct {
		db *sql.DB
		q  string
	}{
		{src, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`},
		{pg, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`},
	} {
		rows, err := q.db.Query(q.q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name string
			rows.Scan(&name)
			if !known[name] {
				t.Errorf("table %s is neither copied by MigrateToPostgres nor listed as the cluster's", name)
			}
		}
		rows.Close()
	}
}

// TestMigrateToPostgresRefusesBadInput: a missing data dir or database,
// a SQLite schema older or newer than this hbd's, a DSN that does not
// parse or connect, and a target holding data are each refused with an
// error naming the problem (never the password), before the target
// changes.
func TestMigrateToPostgresRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	good := t.TempDir()
	fillSQLite(t, good, 3)
	const pw = "hunter2migrate"

	t.Run("missing data dir", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nope")
		_, err := MigrateToPostgres(ctx, missing, pgtest.DSN(t), MigrateOptions{})
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Fatalf("err = %v, want one naming %s", err, missing)
		}
	})
	t.Run("no database", func(t *testing.T) {
		empty := t.TempDir()
		_, err := MigrateToPostgres(ctx, empty, pgtest.DSN(t), MigrateOptions{})
		if err == nil || !strings.Contains(err.Error(), filepath.Join(empty, FileName)) {
			t.Fatalf("err = %v, want one naming the database file", err)
		}
	})
	schemaCase := func(t *testing.T, change string, want error, words ...string) {
		dir := t.TempDir()
		fillSQLite(t, dir, 1)
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(change); err != nil {
			t.Fatal(err)
		}
		db.Close()
		dsn := pgtest.DSN(t)
		_, err = MigrateToPostgres(ctx, dir, dsn, MigrateOptions{})
		if !errors.Is(err, want) {
			t.Fatalf("err = %v, want %v", err, want)
		}
		for _, w := range words {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("err = %v, want it to say %q", err, w)
			}
		}
		assertUntouched(t, dsn)
	}
	t.Run("older schema", func(t *testing.T) {
		schemaCase(t, `DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)`, ErrOlderSchema, "start this hbd")
	})
	t.Run("newer schema", func(t *testing.T) {
		schemaCase(t, `INSERT INTO schema_migrations (version, name, applied) VALUES (9999, 'future', 0)`, ErrNewerSchema, "9999")
	})
	t.Run("bad DSN", func(t *testing.T) {
		_, err := MigrateToPostgres(ctx, good, "postgres://hbd:"+pw+"@db:notaport/hbd", MigrateOptions{})
		if !errors.Is(err, ErrBadDSN) || strings.Contains(err.Error(), pw) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("DSN that does not connect", func(t *testing.T) {
		dsn := "host=127.0.0.1 port=1 dbname=hbd user=hbd password=" + pw + " connect_timeout=3"
		_, err := MigrateToPostgres(ctx, good, dsn, MigrateOptions{})
		if err == nil || !strings.Contains(err.Error(), "cannot connect") || strings.Contains(err.Error(), pw) {
			t.Fatalf("err = %v, want a connection error without the password", err)
		}
	})
	t.Run("target with data", func(t *testing.T) {
		dsn := pgtest.DSN(t)
		p, err := OpenPostgres(ctx, dsn, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.JournalSync(ctx, "", "a daemon ran here"); err != nil {
			t.Fatal(err)
		}
		p.Close()
		_, err = MigrateToPostgres(ctx, good, dsn, MigrateOptions{})
		if !errors.Is(err, ErrTargetNotEmpty) || !strings.Contains(err.Error(), "journal") {
			t.Fatalf("err = %v, want ErrTargetNotEmpty naming journal", err)
		}
		pg, _ := sql.Open("pgx", dsn)
		defer pg.Close()
		if n := pgCount(t, pg, "journal"); n != 1 {
			t.Errorf("journal has %d rows after a refused run", n)
		}
		if n := pgCount(t, pg, "hosts"); n != 0 {
			t.Errorf("hosts has %d rows after a refused run", n)
		}
	})
	t.Run("failure rolls back everything", func(t *testing.T) {
		// A row PostgreSQL refuses (a sample of a series that does not
		// exist: SQLite checked no foreign key when it was written) fails
		// the copy, naming the table and row, and leaves no table filled.
		dir := t.TempDir()
		fillSQLite(t, dir, 2)
		db, _ := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName)+"?_pragma=foreign_keys(0)")
		if _, err := db.Exec(`INSERT INTO samples (series, ts, vals) VALUES (999, 1, x'00')`); err != nil {
			t.Fatal(err)
		}
		db.Close()
		dsn := pgtest.DSN(t)
		_, err := MigrateToPostgres(ctx, dir, dsn, MigrateOptions{})
		if err == nil || !strings.Contains(err.Error(), "samples") || !strings.Contains(err.Error(), "row") {
			t.Fatalf("err = %v, want one naming table samples and the row", err)
		}
		pg, _ := sql.Open("pgx", dsn)
		defer pg.Close()
		for _, table := range copyTables {
			if n := pgCount(t, pg, table); n != 0 {
				t.Errorf("%s has %d rows after a failed copy", table, n)
			}
		}
	})
}

// assertUntouched fails unless the database at dsn has no tables.
func assertUntouched(t *testing.T, dsn string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the target has %d tables: a refused run changed it", n)
	}
}
