package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hbdmon/hbd/core/daemon"
	"github.com/hbdmon/hbd/core/store"
)

const restoreHelp = `usage: hbd restore [-config FILE] BACKUP

Replaces the database in FILE's data_dir with BACKUP (a file hbd backup
wrote, or a hbd.db.pre-migration-*.bak copy). Stop the daemon first: the
restore refuses while data_dir/hbd.pid names a running hbd. BACKUP is
checked before anything changes (a SQLite database that passes the
integrity check, with a schema this hbd knows); the database it replaces
is kept beside it as hbd.db.pre-restore-<time>.bak (with its -wal and
-shm). Run it as root or as the daemon's user; as root the restored file
gets data_dir's owner. An older backup is migrated forward at the next
start.

examples:
  sudo systemctl stop hbd
  sudo hbd restore -config /etc/hbd/hbd.yaml /var/backups/hbd/hbd-2026-12-01.db
  sudo systemctl start hbd
`

func restore(args []string, stdout, stderr io.Writer) int {
	cfg, src, code := fileCommand("restore", restoreHelp, args, stderr)
	if cfg == nil {
		return code
	}
	if cfg.Store.Postgres() {
		fmt.Fprintln(stderr, "hbd restore: store.driver is postgres: restore its database with PostgreSQL's own tools (pg_restore); see docs/HA.md")
		return 1
	}
	if pid, pidPath := runningDaemon(cfg.DataDir); pid != 0 {
		fmt.Fprintf(stderr, "hbd restore: hbd is running on %s (pid %d, from %s): stop it first (sudo systemctl stop hbd)\n", cfg.DataDir, pid, pidPath)
		return 1
	}
	prev, err := store.Restore(context.Background(), cfg.DataDir, src)
	if err != nil {
		fmt.Fprintln(stderr, "hbd restore:", err)
		return 1
	}
	db := filepath.Join(cfg.DataDir, store.FileName)
	fmt.Fprintf(stdout, "restored %s to %s\n", src, db)
	if prev != "" {
		fmt.Fprintf(stdout, "the database it replaced is kept as %s\n", prev)
	}
	fmt.Fprintln(stdout, "start the daemon: sudo systemctl start hbd")
	return 0
}

// runningDaemon returns the pid of the hbd that data_dir's pid file names
// when it runs, else 0, and the pid file's path.
func runningDaemon(dataDir string) (pid int, pidPath string) {
	pidPath = filepath.Join(dataDir, daemon.PIDFile)
	b, err := os.ReadFile(pidPath)
	if err != nil {
		return 0, pidPath
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 && isHBD(pid) {
		return pid, pidPath
	}
	return 0, pidPath
}
