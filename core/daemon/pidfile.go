package daemon

import (
	"os"
	"path/filepath"
	"strconv"
)

// PIDFile is the file in data_dir holding the running daemon's process id,
// so that `hbd add-host --write` can ask it to reload (SIGHUP). It is
// written at start and removed at a clean stop.
const PIDFile = "hbd.pid"

func (d *Daemon) writePID(dataDir string) func() {
	path := filepath.Join(dataDir, PIDFile)
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		d.log.Warn("cannot write the pid file", "path", path, "error", err)
		return func() {}
	}
	return func() { os.Remove(path) }
}
