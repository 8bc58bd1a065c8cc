package collect

import (
	"context"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/protocol"
)

// TestBuiltinsDeclareTheUnitOfEveryMetric runs every built-in for real:
// each path it reports on this machine has a declared unit from the
// protocol's vocabulary, and the ones the web UI got wrong by guessing
// have the right one.
func TestBuiltinsDeclareTheUnitOfEveryMetric(t *testing.T) {
	want := map[string]map[string]string{
		CPU: {"cpu_percent": "percent", "frequency": "MHz", "load_1min": "", "cpu_count": "count"},
		Memory: {"percent": "percent", "available_mb": "MiB", "total_mb": "MiB", "used_mb": "MiB",
			"swap_percent": "percent"},
		Disk: {"/.percent": "percent", "/.used_gb": "GiB", "/.free_gb": "GiB", "/.total_gb": "GiB",
			"io.sda.read_bytes": "bytes_total", "io.sda.read_count": "count_total", "io.vda.write_bytes_per_s": "bytes/s"},
		Network: {"lo.bytes_sent": "bytes_total", "lo.bytes_recv": "bytes_total", "lo.packets_recv": "count_total",
			"lo.errin": "count_total", "lo.dropout": "count_total", "lo.bytes_recv_per_s": "bytes/s",
			"connections.total": "count", "connections.time_wait": "count",
			// an interface named like a connection count keeps its own units
			"total.bytes_sent": "bytes_total"},
	}
	for name, paths := range want {
		t.Run(name, func(t *testing.T) {
			p := Builtins[name]()
			u, ok := p.(Uniter)
			if !ok {
				t.Fatalf("%s declares no units", name)
			}
			units := u.Units()
			if err := protocol.ValidatePluginUnits(units); err != nil {
				t.Fatal(err)
			}
			for path, w := range paths {
				if got, ok := protocol.UnitOf(units, path); !ok || got != w {
					t.Errorf("unit of %s = %q (declared %v), want %q", path, got, ok, w)
				}
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if pr, ok := p.(Primer); ok {
				if err := pr.Prime(ctx); err != nil {
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			data, err := p.Collect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			metrics, err := protocol.Flatten(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range metrics {
				if _, ok := protocol.UnitOf(units, m.Path); !ok {
					t.Errorf("%s reports %s without a unit", name, m.Path)
				}
			}
		})
	}
	exec := NewExec(ExecSpec{Name: "q", Command: []string{"/bin/true"}, Timeout: time.Second, Units: map[string]string{"depth": "count"}})
	if exec.Units()["depth"] != "count" {
		t.Errorf("exec units %v", exec.Units())
	}
}
