package collect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/load"

	"github.com/hbdmon/hbd/core/protocol"
)

// CPUPlugin reports cpu_percent (busy share of all CPUs since the previous
// reading), load_1min/5min/15min, frequency (MHz, omitted when the system
// does not expose it) and cpu_count (logical CPUs).
type CPUPlugin struct {
	prev     cpu.TimesStat
	havePrev bool
}

// NewCPU returns the cpu_monitor plugin.
func NewCPU() *CPUPlugin { return &CPUPlugin{} }

// Name implements Plugin.
func (p *CPUPlugin) Name() string { return CPU }

// Prime implements Primer: it takes the reading cpu_percent is measured from.
func (p *CPUPlugin) Prime(ctx context.Context) error {
	t, err := cpuTimes(ctx)
	if err != nil {
		return err
	}
	p.prev, p.havePrev = t, true
	return nil
}

// Collect implements Plugin.
func (p *CPUPlugin) Collect(ctx context.Context) (map[string]any, error) {
	t, err := cpuTimes(ctx)
	if err != nil {
		return nil, err
	}
	// Without a previous reading the share since boot is the best estimate.
	var prev cpu.TimesStat
	if p.havePrev {
		prev = p.prev
	}
	p.prev, p.havePrev = t, true
	data := map[string]any{"cpu_percent": round2(busyPercent(prev, t))}

	if avg, err := load.AvgWithContext(ctx); err == nil {
		data["load_1min"] = round2(avg.Load1)
		data["load_5min"] = round2(avg.Load5)
		data["load_15min"] = round2(avg.Load15)
	}
	if n, err := cpu.CountsWithContext(ctx, true); err == nil && n > 0 {
		data["cpu_count"] = float64(n)
	}
	if mhz := frequencyMHz(ctx); mhz > 0 {
		data["frequency"] = round2(mhz)
	}
	return data, nil
}

func cpuTimes(ctx context.Context) (cpu.TimesStat, error) {
	ts, err := cpu.TimesWithContext(ctx, false)
	if err != nil {
		return cpu.TimesStat{}, fmt.Errorf("cpu times: %w", err)
	}
	if len(ts) == 0 {
		return cpu.TimesStat{}, fmt.Errorf("cpu times: none reported")
	}
	return ts[0], nil
}

// busyPercent is the share of non-idle time between two readings. Guest
// time is already counted in user and nice, so it is left out of the total.
func busyPercent(a, b cpu.TimesStat) float64 {
	total := func(t cpu.TimesStat) float64 {
		return t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
	}
	dt := total(b) - total(a)
	if dt <= 0 {
		return 0
	}
	busy := dt - ((b.Idle + b.Iowait) - (a.Idle + a.Iowait))
	return min(100, max(0, busy/dt*100))
}

// frequencyMHz is the mean current frequency of all CPUs: from cpufreq in
// sysfs where the kernel has it, else what gopsutil reports (the
// /proc/cpuinfo figure on most virtual machines). 0 means unknown.
func frequencyMHz(ctx context.Context) float64 {
	sys := os.Getenv("HOST_SYS")
	if sys == "" {
		sys = "/sys"
	}
	files, _ := filepath.Glob(filepath.Join(sys, "devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq"))
	var sum float64
	var n int
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		khz, err := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
		if err != nil || khz <= 0 {
			continue
		}
		sum += khz / 1000
		n++
	}
	if n == 0 {
		infos, err := cpu.InfoWithContext(ctx)
		if err != nil {
			return 0
		}
		for _, in := range infos {
			if in.Mhz > 0 {
				sum += in.Mhz
				n++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

var cpuUnits = map[string]string{
	"cpu_percent": protocol.UnitPercent,
	"load_1min":   protocol.UnitNone,
	"load_5min":   protocol.UnitNone,
	"load_15min":  protocol.UnitNone,
	"frequency":   protocol.UnitMHz,
	"cpu_count":   protocol.UnitCount,
}

// Units implements Uniter.
func (*CPUPlugin) Units() map[string]string { return cpuUnits }

// Interface guards
var (
	_ Plugin = (*CPUPlugin)(nil)
	_ Uniter = (*CPUPlugin)(nil)
	_ Primer = (*CPUPlugin)(nil)
)
