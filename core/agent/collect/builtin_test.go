package collect

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/protocol"
)

// TestBuiltinsProduceValidSamplesOnThisMachine runs every built-in for real:
// its output must pass the daemon's validation and hold the documented fields.
func TestBuiltinsProduceValidSamplesOnThisMachine(t *testing.T) {
	tests := []struct {
		name string
		want []string // flattened paths that must be present
	}{
		{CPU, []string{"cpu_percent", "load_1min", "load_5min", "load_15min", "cpu_count"}},
		{Memory, []string{"percent", "available_mb", "total_mb", "used_mb", "swap_percent", "swap_total_mb", "swap_used_mb"}},
		{Disk, []string{"/.percent", "/.used_gb", "/.free_gb", "/.total_gb"}},
		{Network, []string{"lo.bytes_sent", "lo.bytes_recv", "lo.packets_sent", "lo.packets_recv",
			"lo.errin", "lo.errout", "lo.dropin", "lo.dropout", "lo.bytes_sent_per_s", "lo.bytes_recv_per_s",
			"connections.total", "connections.established", "connections.listen", "connections.time_wait"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			p := Builtins[tt.name]()
			if p.Name() != tt.name {
				t.Fatalf("Name() = %q", p.Name())
			}
			if err := protocol.ValidatePlugin(p.Name()); err != nil {
				t.Fatal(err)
			}
			if pr, ok := p.(Primer); ok {
				if err := pr.Prime(ctx); err != nil {
					t.Fatalf("Prime: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			for round := range 2 {
				data, err := p.Collect(ctx)
				if err != nil {
					t.Fatalf("round %d: Collect: %v", round, err)
				}
				metrics, err := protocol.Flatten(data)
				if err != nil {
					t.Fatalf("round %d: %v\n%v", round, err, data)
				}
				have := map[string]bool{}
				for _, m := range metrics {
					have[m.Path] = true
					if strings.Count(m.Path, ".") > 2 {
						t.Errorf("path %q has a key containing '.'", m.Path)
					}
				}
				for _, w := range tt.want {
					if !have[w] {
						t.Errorf("round %d: missing %q in %v", round, w, data)
					}
				}
			}
		})
	}
}

func TestDiskReportsDeviceIO(t *testing.T) {
	p := NewDisk()
	ctx := t.Context()
	if err := p.Prime(ctx); err != nil {
		t.Fatal(err)
	}
	data, err := p.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	io, ok := data["io"].(map[string]any)
	if !ok || len(io) == 0 {
		if hasBlockDevices() {
			t.Fatalf("/proc/diskstats lists block devices but disk_monitor reported no io: %v", data)
		}
		t.Skipf("this machine exposes no block device counters (/proc/diskstats has none): %v", data)
	}
	for dev, v := range io {
		fields := v.(map[string]any)
		for _, f := range []string{"read_bytes", "write_bytes", "read_count", "write_count", "read_bytes_per_s", "write_bytes_per_s"} {
			if _, ok := fields[f]; !ok {
				t.Errorf("io.%s lacks %s", dev, f)
			}
		}
		if strings.HasPrefix(dev, "loop") || strings.HasPrefix(dev, "ram") {
			t.Errorf("pseudo device %s reported", dev)
		}
	}
}

func TestDiskSkipsPseudoFilesystems(t *testing.T) {
	data, err := NewDisk().Collect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"/proc", "/sys", "/dev", "/dev/shm", "/sys/fs/cgroup"} {
		if _, ok := data[k]; ok {
			t.Errorf("pseudo filesystem %s reported", k)
		}
	}
}

func TestFirstReadingWithoutPrimeHasNoRates(t *testing.T) {
	data, err := NewNetwork().Collect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	lo, ok := data["lo"].(map[string]any)
	if !ok {
		t.Fatalf("no loopback interface in %v", data)
	}
	if _, ok := lo["bytes_sent_per_s"]; ok {
		t.Fatal("rate reported without a previous reading")
	}
}

func TestCounterRate(t *testing.T) {
	tests := []struct {
		name      string
		prev, cur uint64
		dt        time.Duration
		want      float64
	}{
		{"steady", 1000, 3000, 2 * time.Second, 1000},
		{"counter reset", 5000, 10, time.Second, 0},
		{"no time passed", 1, 2, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := counterRate(tt.prev, tt.cur, tt.dt); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestKeysNeverContainTheDaemonPathSeparator(t *testing.T) {
	if got := key("/mnt/data.v2"); got != "/mnt/data_v2" {
		t.Fatalf("got %q", got)
	}
}

// hasBlockDevices reports whether /proc/diskstats lists a device other than
// loop and ram disks.
func hasBlockDevices() bool {
	b, err := os.ReadFile("/proc/diskstats")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && !strings.HasPrefix(f[2], "loop") && !strings.HasPrefix(f[2], "ram") {
			return true
		}
	}
	return false
}
