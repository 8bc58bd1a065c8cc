// Package cputime measures the CPU time this process used, so benchmarks
// can report CPU per operation: on a machine shared with other work that
// figure moves much less than throughput does.
package cputime

import (
	"syscall"
	"testing"
	"time"
)

// Now returns the user plus system CPU time the process has used.
func Now() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Report adds the process CPU time since start per unit (n units done) to
// b's results as "cpu-µs/<unit>". Call it right after the timed loop; it
// includes every goroutine of the process (a benchmark's own clients too).
func Report(b *testing.B, start time.Duration, n int, unit string) {
	if n <= 0 {
		return
	}
	b.ReportMetric(float64(Now()-start)/float64(time.Microsecond)/float64(n), "cpu-µs/"+unit)
}
