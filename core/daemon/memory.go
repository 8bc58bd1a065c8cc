package daemon

import (
	"os"
	"runtime/debug"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/config"
)

// applyMemoryLimit sets the Go runtime's soft memory limit from
// memory_limit (off: no limit), at start and on every reload. A GOMEMLIMIT
// in the environment, which the runtime applied at start, wins.
func applyMemoryLimit(cfg *config.Config, log hclog.Logger) {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		log.Debug("memory limit from GOMEMLIMIT; memory_limit ignored", "GOMEMLIMIT", v)
		return
	}
	n := cfg.MemoryLimitBytes()
	if n == 0 {
		n = 1<<63 - 1 // the runtime's "no limit"
	}
	if debug.SetMemoryLimit(n) != n {
		log.Info("memory limit set", "memory_limit", cfg.MemoryLimit)
	}
}
