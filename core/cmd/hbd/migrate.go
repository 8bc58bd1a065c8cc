package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/store"
)

const migrateStoreHelp = `usage: hbd migrate-store [-config FILE] [-from DIR] [-to-dsn DSN]

Copies one daemon's SQLite database (DIR/hbd.db; default: FILE's
data_dir) into an empty PostgreSQL database, to go from one machine to
several daemons on one database (docs/HA.md). The target is DSN, or else
FILE's store section, which must then say driver: postgres (dsn or
dsn_file, and password_file). With -to-dsn the password comes from the
DSN, PGPASSWORD or ~/.pgpass.

Stop the daemon first: it refuses while data_dir/hbd.pid names a running
hbd. The SQLite file is opened read-only and must be at this hbd's schema
(an older one: start this hbd on it once, then stop it). The PostgreSQL
database is migrated to this hbd's schema and must hold no data: the copy
never merges. Everything is copied in one transaction (hosts, samples,
journal, alert states, silences and episodes, heartbeat states, units,
user channels, pending notifications and their dedupe records, users'
overrides and sessions): a failure leaves the database as it was, naming
the table and row. The cluster's own tables stay empty. Prints each
table's row count; the DSN and secrets are never printed.

examples:
  sudo systemctl stop hbd
  sudo -u hbd PGPASSWORD=... hbd migrate-store -config /etc/hbd/hbd.yaml -to-dsn 'postgres://hbd@db.example.net/hbd'
  sudo -u hbd hbd migrate-store -config /etc/hbd/hbd-ha.yaml -from /var/lib/hbd
`

func migrateStore(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("migrate-store", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, migrateStoreHelp) }
	path := fs.String("config", "hbd.yaml", "config file")
	from := fs.String("from", "", "data_dir holding the SQLite hbd.db (default: the config's data_dir)")
	toDSN := fs.String("to-dsn", "", "PostgreSQL connection string (default: the config's store section)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprint(stderr, migrateStoreHelp)
		return 2
	}
	cfg, err := config.Load(*path, nil)
	if err != nil {
		fmt.Fprintln(stderr, "hbd migrate-store:", err)
		return 1
	}
	dsn, password := *toDSN, ""
	if dsn == "" {
		if !cfg.Store.Postgres() {
			fmt.Fprintf(stderr, "hbd migrate-store: name the PostgreSQL database: -to-dsn DSN, or a config whose store section says driver: postgres (%s says %s)\n", cfg.File, cfg.Store.Driver)
			return 2
		}
		d, p, err := cfg.Store.Connection()
		if err != nil {
			var ce *config.Error
			if errors.As(err, &ce) && ce.File == "" {
				ce.File = cfg.File
			}
			fmt.Fprintln(stderr, "hbd migrate-store:", err)
			return 1
		}
		dsn, password = d.Reveal(), p.Reveal()
	}
	dataDir := *from
	if dataDir == "" {
		dataDir = cfg.DataDir
	}
	if pid, pidPath := runningDaemon(dataDir); pid != 0 {
		fmt.Fprintf(stderr, "hbd migrate-store: hbd is running on %s (pid %d, from %s): stop it first (sudo systemctl stop hbd), or what it stores after the copy is lost\n", dataDir, pid, pidPath)
		return 1
	}

	start := time.Now()
	fmt.Fprintf(stdout, "copying %s (one transaction):\n", filepath.Join(dataDir, store.FileName))
	var total int64
	res, err := store.MigrateToPostgres(context.Background(), dataDir, dsn, store.MigrateOptions{
		Password: password,
		Copied: func(tc store.TableCopy) {
			total += tc.Rows
			fmt.Fprintf(stdout, "  %-22s %12d rows  %6.1fs\n", tc.Table, tc.Rows, tc.Duration.Seconds())
		},
	})
	if err != nil {
		fmt.Fprintln(stderr, "hbd migrate-store:", err)
		return 1
	}
	fmt.Fprintf(stdout, "  %-22s %12d rows  %6.1fs\n", "total", total, time.Since(start).Seconds())
	fmt.Fprintf(stdout, "committed into %s\n", res.Target)
	fmt.Fprintf(stdout, "left in their initial state for the daemons (cluster tables): %s\n", strings.Join(store.ClusterTables(), ", "))
	fmt.Fprintln(stdout, "next: give every daemon store.driver: postgres with this database and start them (docs/HA.md); keep the SQLite file until they run")
	return 0
}
