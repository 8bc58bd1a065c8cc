// Package collect holds the agent's plugins: the four built-in host metric
// collectors (cpu_monitor, memory_monitor, disk_monitor, network_monitor)
// and exec plugins that run a command printing JSON.
//
// Every plugin returns a data object whose leaves are float64 numbers and
// whose keys never contain "." (the daemon joins nested keys with "."), so
// each result passes protocol.Flatten.
package collect

import (
	"context"
	"math"
	"sort"
	"strings"
	"time"
)

// Names of the built-in plugins.
const (
	CPU     = "cpu_monitor"
	Memory  = "memory_monitor"
	Disk    = "disk_monitor"
	Network = "network_monitor"
)

// Plugin produces one data object per Collect call. The agent calls Collect
// from one goroutine at a time per plugin; ctx bounds the call.
type Plugin interface {
	Name() string
	Collect(ctx context.Context) (map[string]any, error)
}

// Primer is implemented by plugins that report rates or usage since their
// previous reading. Prime takes that first reading; the agent calls it once
// before the first Collect, which then follows after a short pause.
type Primer interface {
	Prime(ctx context.Context) error
}

// Uniter is implemented by plugins that declare the units of what they
// report: keys are metric paths inside the plugin's data or last path
// segments (protocol.UnitOf), values units of the protocol's vocabulary
// (protocol.ValidUnit). The map must not be modified.
type Uniter interface {
	Units() map[string]string
}

// Builtins maps each built-in plugin name to its constructor.
var Builtins = map[string]func() Plugin{
	CPU:     func() Plugin { return NewCPU() },
	Memory:  func() Plugin { return NewMemory() },
	Disk:    func() Plugin { return NewDisk() },
	Network: func() Plugin { return NewNetwork() },
}

// BuiltinNames returns the built-in plugin names, sorted.
func BuiltinNames() []string {
	names := make([]string, 0, len(Builtins))
	for n := range Builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

const (
	mib = 1 << 20
	gib = 1 << 30
)

// round2 keeps two decimals: enough for percentages and sizes in MB/GB,
// and it keeps the wire format readable.
func round2(v float64) float64 { return math.Round(v*100) / 100 }

// key makes a device or mount name usable as a data key: "." is the
// daemon's path separator, so it becomes "_".
func key(name string) string { return strings.ReplaceAll(name, ".", "_") }

// counterRate is the per-second rate of a monotonically increasing counter
// between two readings; a counter that went backwards (reset, wrap) gives 0.
func counterRate(prev, cur uint64, elapsed time.Duration) float64 {
	if cur < prev || elapsed <= 0 {
		return 0
	}
	return round2(float64(cur-prev) / elapsed.Seconds())
}
