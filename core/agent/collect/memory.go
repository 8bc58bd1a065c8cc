package collect

import (
	"context"
	"fmt"

	"github.com/shirou/gopsutil/v4/mem"

	"github.com/hbdmon/hbd/core/protocol"
)

// MemoryPlugin reports percent, available_mb, total_mb, used_mb,
// swap_percent, swap_total_mb and swap_used_mb (MB are MiB).
type MemoryPlugin struct{}

// NewMemory returns the memory_monitor plugin.
func NewMemory() *MemoryPlugin { return &MemoryPlugin{} }

// Name implements Plugin.
func (*MemoryPlugin) Name() string { return Memory }

// Collect implements Plugin. Swap fields are omitted if swap cannot be read.
func (*MemoryPlugin) Collect(ctx context.Context) (map[string]any, error) {
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	data := map[string]any{
		"percent":      round2(vm.UsedPercent),
		"available_mb": round2(float64(vm.Available) / mib),
		"total_mb":     round2(float64(vm.Total) / mib),
		"used_mb":      round2(float64(vm.Used) / mib),
	}
	if sw, err := mem.SwapMemoryWithContext(ctx); err == nil {
		data["swap_percent"] = round2(sw.UsedPercent)
		data["swap_total_mb"] = round2(float64(sw.Total) / mib)
		data["swap_used_mb"] = round2(float64(sw.Used) / mib)
	}
	return data, nil
}

var memoryUnits = map[string]string{
	"percent":       protocol.UnitPercent,
	"available_mb":  protocol.UnitMiB,
	"total_mb":      protocol.UnitMiB,
	"used_mb":       protocol.UnitMiB,
	"swap_percent":  protocol.UnitPercent,
	"swap_total_mb": protocol.UnitMiB,
	"swap_used_mb":  protocol.UnitMiB,
}

// Units implements Uniter.
func (*MemoryPlugin) Units() map[string]string { return memoryUnits }

// Interface guards
var (
	_ Plugin = (*MemoryPlugin)(nil)
	_ Uniter = (*MemoryPlugin)(nil)
)
