package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
)

// fill opens a store in dir, writes some history and closes it.
func fill(t *testing.T, dir string) {
	t.Helper()
	st, err := store.Open(context.Background(), dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 400; i++ {
		if err := st.JournalSync(context.Background(), "web01", strings.Repeat("journal line to fill pages ", 10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// The database and its side files hold secrets: 0600, also when they
// existed with a wider mode (issue 10).
func TestDatabaseFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, store.FileName), nil, 0o644)
	st, err := store.Open(context.Background(), dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Journal("", "something to write")
	testutil.Eventually(t, "the -wal file", 5*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(dir, store.FileName+"-wal"))
		return err == nil
	})
	for _, name := range []string{store.FileName, store.FileName + "-wal", store.FileName + "-shm"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, m)
		}
	}
}

// A damaged page is found at start and named with the file, not served as
// a 500 later (issue 10: "database disk image is malformed" on a history
// read; a truncated file gave "table hosts already exists").
func TestDamagedDatabaseIsRefusedAtStart(t *testing.T) {
	for _, damage := range []string{"garbled page", "truncated"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			fill(t, dir)
			path := filepath.Join(dir, store.FileName)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) < 8*4096 {
				t.Fatalf("database too small to damage: %d bytes", len(b))
			}
			switch damage {
			case "garbled page":
				for i := 3 * 4096; i < 4*4096; i++ {
					b[i] = byte(i * 7)
				}
			case "truncated":
				b = b[:len(b)/2+100]
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = store.Open(context.Background(), dir, store.Options{})
			if err == nil {
				t.Fatal("a damaged database was opened")
			}
			if !errors.Is(err, store.ErrDamaged) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not say the file %s is damaged", err, path)
			}
		})
	}
}

// A database written by a newer hbd (a migration this binary does not
// know) is refused rather than run on.
func TestNewerSchemaIsRefused(t *testing.T) {
	dir := t.TempDir()
	fill(t, dir)
	db, err := sql.Open("sqlite", filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied) VALUES (9999, 'from the future', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = store.Open(context.Background(), dir, store.Options{})
	if !errors.Is(err, store.ErrNewerSchema) || !strings.Contains(err.Error(), "9999") {
		t.Fatalf("err = %v, want ErrNewerSchema naming 9999", err)
	}
}

// CheckSchema tells, read-only and without migrating, what Open would say
// of the schema version: nothing for a current database or none at all
// (and it creates none), ErrNewerSchema naming the unknown migration for
// a database written by a newer hbd, which it leaves as it was.
func TestCheckSchemaIsReadOnly(t *testing.T) {
	ctx := context.Background()
	empty := t.TempDir()
	if err := store.CheckSchema(ctx, empty); err != nil {
		t.Errorf("no database: %v", err)
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("CheckSchema created %v in an empty data_dir", ents)
	}
	dir := t.TempDir()
	fill(t, dir)
	if err := store.CheckSchema(ctx, dir); err != nil {
		t.Errorf("current database: %v", err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied) VALUES (9999, 'from the future', 0)`); err != nil {
		t.Fatal(err)
	}
	err = store.CheckSchema(ctx, dir)
	if !errors.Is(err, store.ErrNewerSchema) || !strings.Contains(err.Error(), "9999") {
		t.Fatalf("newer database: err = %v, want ErrNewerSchema naming 9999", err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM schema_migrations WHERE version = 9999`).Scan(&n); err != nil || n != 1 {
		t.Errorf("the newer database was changed: %d rows of 9999, %v", n, err)
	}
}

// Journal lines are stored without control or bidi characters (a silence
// comment "\x00\x1b[31m" was journaled raw), and a cut never splits a
// character.
func TestJournalLinesAreSafeToShow(t *testing.T) { eachStore(t, testJournalLinesAreSafeToShow) }

func testJournalLinesAreSafeToShow(t *testing.T, st *store.Store) {
	ctx := context.Background()
	if err := st.JournalSync(ctx, "web01", "silence: \x00\x1b[31mred\u202Etxt.exe"); err != nil {
		t.Fatal(err)
	}
	if err := st.JournalSync(ctx, "web01", strings.Repeat("é", store.MaxMessageBytes)); err != nil {
		t.Fatal(err)
	}
	msgs, err := st.Messages(ctx, store.MessageQuery{Host: "web01"})
	if err != nil || len(msgs) != 2 {
		t.Fatalf("messages: %v %v", msgs, err)
	}
	long, short := msgs[0].Msg, msgs[1].Msg
	if short != "silence: \uFFFD\uFFFD[31mred\uFFFDtxt.exe" {
		t.Errorf("stored %q", short)
	}
	if len(long) > store.MaxMessageBytes || strings.ContainsRune(long, '\uFFFD') {
		t.Errorf("long line: %d bytes, replacement characters: %v", len(long), strings.ContainsRune(long, '\uFFFD'))
	}
}
