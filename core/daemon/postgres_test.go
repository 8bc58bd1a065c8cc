package daemon_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// hbd serve on PostgreSQL, end to end: signed batches acknowledged by a
// daemon that is then killed with SIGKILL are all there after a restart,
// in PostgreSQL (no SQLite file is created), and the DSN's password (read
// from store.dsn_file) shows in no log line.
func TestPostgresStoreKeepsAcknowledgedSamplesAcrossKill9(t *testing.T) {
	const pw = "never-logged-pw"
	dsn := pgtest.DSN(t) + " password=" + pw // trust auth: the server never asks for it
	dsnFile := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(dsnFile, []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir, acked, logs := kill9LosesNoAcknowledgedSample(t, "store:\n  driver: postgres\n  dsn_file: "+dsnFile+"\n")

	if _, err := os.Stat(filepath.Join(dir, "data", store.FileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a SQLite file was created in data_dir with store.driver postgres: %v", err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM samples x JOIN series s ON s.id = x.series WHERE s.host = 'web01'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n < acked {
		t.Fatalf("PostgreSQL holds %d samples of web01, %d were acknowledged", n, acked)
	}
	if strings.Contains(logs, pw) || !strings.Contains(logs, "PostgreSQL") {
		t.Fatalf("the log shows the DSN's password, or does not say the store is PostgreSQL:\n%s", logs)
	}
}
