package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/store"
)

const backupHelp = `usage: hbd backup [-config FILE] OUT

Writes a consistent copy of the database in FILE's data_dir to OUT (a
new file, mode 0600) while the daemon runs: SQLite's VACUUM INTO, one read
transaction, the daemon keeps writing. Run it as the daemon's user (or
root). To put it back: hbd restore (docs/INSTALL.md, "Backup and restore").

examples:
  sudo -u hbd hbd backup -config /etc/hbd/hbd.yaml /var/backups/hbd/hbd-today.db
  hbd backup -config examples/hbd.yaml /tmp/hbd.db
`

func backup(args []string, stdout, stderr io.Writer) int {
	cfg, out, code := fileCommand("backup", backupHelp, args, stderr)
	if cfg == nil {
		return code
	}
	if err := store.Backup(context.Background(), cfg.DataDir, out); err != nil {
		fmt.Fprintln(stderr, "hbd backup:", err)
		return 1
	}
	size := int64(0)
	if st, err := os.Stat(out); err == nil {
		size = st.Size()
	}
	fmt.Fprintf(stdout, "%s: backup of %s (%d bytes)\n", out, filepath.Join(cfg.DataDir, store.FileName), size)
	return 0
}

// fileCommand parses the arguments of a command that takes one file
// argument (before or after its flags) and -config, and loads the config.
// cfg is nil when the command must end with code (usage or config error).
func fileCommand(name, help string, args []string, stderr io.Writer) (cfg *config.Config, file string, code int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, help) }
	path := fs.String("config", "hbd.yaml", "config file")
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return nil, "", 2
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 || file == "" {
		fmt.Fprint(stderr, help)
		return nil, "", 2
	}
	cfg, err := config.Load(*path, nil)
	if err != nil {
		fmt.Fprintf(stderr, "hbd %s: %v\n", name, err)
		return nil, "", 1
	}
	return cfg, file, 0
}
