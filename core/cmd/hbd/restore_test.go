package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hbdmon/hbd/core/daemon"
	"github.com/hbdmon/hbd/core/store"
)

// journalHas reports whether the database in dir holds journal line msg.
func journalHas(t *testing.T, dir, msg string) bool {
	t.Helper()
	st, err := store.Open(context.Background(), dir, store.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	defer st.Close()
	msgs, err := st.Messages(context.Background(), store.MessageQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Msg == msg {
			return true
		}
	}
	return false
}

// hbd restore puts a backup back while the daemon is stopped: it refuses
// while data_dir's pid file names a running hbd, refuses a file that is
// no hbd database, and keeps the database it replaces.
func TestRestoreCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.JournalSync(ctx, "web01", "in the backup"); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "hbd.yaml")
	os.WriteFile(conf, []byte("data_dir: "+dir+"\nwatchhosts: {}\n"), 0o600)
	bak := filepath.Join(t.TempDir(), "copy.db")
	if code, _, errs := hbd([]string{"backup", "-config", conf, bak}, ""); code != 0 {
		t.Fatalf("backup: exit %d, %q", code, errs)
	}
	if err := st.JournalSync(ctx, "web01", "after the backup"); err != nil {
		t.Fatal(err)
	}

	// A running daemon (this test process: its name starts with hbd, as
	// the daemon's does) keeps its database.
	pidFile := filepath.Join(dir, daemon.PIDFile)
	os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	if code, _, errs := hbd([]string{"restore", "-config", conf, bak}, ""); code != 1 || !strings.Contains(errs, "is running") || !strings.Contains(errs, "systemctl stop hbd") {
		t.Errorf("restore under a running daemon: exit %d, %q", code, errs)
	}
	st.Close()
	os.Remove(pidFile)

	junk := filepath.Join(t.TempDir(), "junk.db")
	os.WriteFile(junk, []byte("this is no database, only some text of some length"), 0o600)
	if code, _, errs := hbd([]string{"restore", "-config", conf, junk}, ""); code != 1 || !strings.Contains(errs, "not an hbd database") {
		t.Errorf("restore of a text file: exit %d, %q", code, errs)
	}
	if !journalHas(t, dir, "after the backup") {
		t.Fatal("a refused restore changed the database")
	}

	code, out, errs := hbd([]string{"restore", "-config", conf, bak}, "")
	if code != 0 || !strings.Contains(out, "restored "+bak) || !strings.Contains(out, "pre-restore-") {
		t.Fatalf("restore: exit %d, %q %q", code, out, errs)
	}
	if !journalHas(t, dir, "in the backup") || journalHas(t, dir, "after the backup") {
		t.Errorf("data_dir does not hold the backup's database")
	}
	if code, _, errs := hbd([]string{"restore", "-config", conf}, ""); code != 2 || !strings.Contains(errs, "usage: hbd restore") {
		t.Errorf("restore without a file: exit %d, %q", code, errs)
	}
	pg := filepath.Join(t.TempDir(), "hbd.yaml")
	os.WriteFile(pg, []byte("data_dir: "+dir+"\nwatchhosts: {}\nstore: {driver: postgres, dsn: 'postgres://hbd@db:5432/hbd'}\n"), 0o600)
	if code, _, errs := hbd([]string{"restore", "-config", pg, bak}, ""); code != 1 || !strings.Contains(errs, "pg_restore") {
		t.Errorf("restore with store.driver postgres: exit %d, %q", code, errs)
	}
}
