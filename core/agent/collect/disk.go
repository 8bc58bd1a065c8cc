package collect

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/disk"

	"github.com/hbdmon/hbd/core/protocol"
)

// Bounds that keep a disk_monitor sample within protocol.MaxSampleFields.
const (
	maxMounts  = 32
	maxDevices = 32
)

// skipFS are filesystem types that are not storage a host can fill: kernel
// and virtual filesystems, read-only images (always 100% full) and network
// filesystems (their server reports them, and a hung server would stall
// the plugin in statfs).
var skipFS = map[string]bool{
	"autofs": true, "binfmt_misc": true, "bpf": true, "cgroup": true, "cgroup2": true,
	"configfs": true, "debugfs": true, "devfs": true, "devpts": true, "devtmpfs": true,
	"efivarfs": true, "fusectl": true, "hugetlbfs": true, "mqueue": true, "nsfs": true,
	"proc": true, "pstore": true, "ramfs": true, "rpc_pipefs": true, "securityfs": true,
	"selinuxfs": true, "sysfs": true, "tmpfs": true, "tracefs": true, "nfsd": true,
	"squashfs": true, "iso9660": true, "udf": true, "erofs": true,
	"fuse.lxcfs": true, "fuse.gvfsd-fuse": true, "fuse.portal": true, "fuse.snapfuse": true,
	"nfs": true, "nfs4": true, "cifs": true, "smb3": true, "smbfs": true, "ceph": true,
	"fuse.sshfs": true, "fuse.glusterfs": true, "glusterfs": true, "9p": true, "afs": true,
}

// DiskPlugin reports, per mounted local filesystem (key: the mount point,
// "." replaced by "_"), percent, used_gb, free_gb and total_gb; and under
// "io", per block device, read/write bytes and counts since boot plus
// read_bytes_per_s and write_bytes_per_s since the previous reading.
type DiskPlugin struct {
	prev   map[string]disk.IOCountersStat
	prevAt time.Time
}

// NewDisk returns the disk_monitor plugin.
func NewDisk() *DiskPlugin { return &DiskPlugin{} }

// Name implements Plugin.
func (*DiskPlugin) Name() string { return Disk }

// Prime implements Primer: it takes the reading I/O rates are measured from.
func (p *DiskPlugin) Prime(ctx context.Context) error {
	cur, err := disk.IOCountersWithContext(ctx)
	if err != nil {
		return fmt.Errorf("disk io: %w", err)
	}
	p.prev, p.prevAt = cur, time.Now()
	return nil
}

// Collect implements Plugin. It fails only if neither usage nor I/O
// counters can be read.
func (p *DiskPlugin) Collect(ctx context.Context) (map[string]any, error) {
	data, usageErr := usage(ctx)
	io, ioErr := p.io(ctx)
	if len(io) > 0 {
		data["io"] = io
	}
	if len(data) == 0 {
		if usageErr == nil {
			usageErr = ioErr
		}
		return nil, fmt.Errorf("disk: no filesystems or devices to report: %w", usageErr)
	}
	return data, nil
}

func usage(ctx context.Context) (map[string]any, error) {
	data := map[string]any{}
	parts, err := disk.PartitionsWithContext(ctx, true)
	if err != nil {
		return data, fmt.Errorf("disk partitions: %w", err)
	}
	// Shortest mount point first, so a bind mount or second mount of the
	// same device is reported where it is mounted at the top.
	sort.SliceStable(parts, func(i, j int) bool {
		a, b := parts[i].Mountpoint, parts[j].Mountpoint
		if len(a) != len(b) {
			return len(a) < len(b)
		}
		return a < b
	})
	seen := map[string]bool{}
	var lastErr error
	for _, pt := range parts {
		if len(data) >= maxMounts {
			break
		}
		if skipFS[pt.Fstype] || (pt.Fstype == "overlay" && pt.Mountpoint != "/") {
			continue
		}
		if strings.HasPrefix(pt.Device, "/") {
			if seen[pt.Device] {
				continue
			}
			seen[pt.Device] = true
		}
		k := key(pt.Mountpoint)
		if _, dup := data[k]; dup || len(k)+len(".total_gb") > protocol.MaxPathLength {
			continue
		}
		u, err := disk.UsageWithContext(ctx, pt.Mountpoint)
		if err != nil {
			lastErr = err
			continue
		}
		if u.Total == 0 {
			continue
		}
		data[k] = map[string]any{
			"percent":  round2(u.UsedPercent),
			"used_gb":  round2(float64(u.Used) / gib),
			"free_gb":  round2(float64(u.Free) / gib),
			"total_gb": round2(float64(u.Total) / gib),
		}
	}
	return data, lastErr
}

func (p *DiskPlugin) io(ctx context.Context) (map[string]any, error) {
	cur, err := disk.IOCountersWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("disk io: %w", err)
	}
	now := time.Now()
	names := make([]string, 0, len(cur))
	for name := range cur {
		if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	out := map[string]any{}
	for _, name := range names[:min(len(names), maxDevices)] {
		c := cur[name]
		dev := map[string]any{
			"read_bytes":  float64(c.ReadBytes),
			"write_bytes": float64(c.WriteBytes),
			"read_count":  float64(c.ReadCount),
			"write_count": float64(c.WriteCount),
		}
		if prev, ok := p.prev[name]; ok {
			dt := now.Sub(p.prevAt)
			dev["read_bytes_per_s"] = counterRate(prev.ReadBytes, c.ReadBytes, dt)
			dev["write_bytes_per_s"] = counterRate(prev.WriteBytes, c.WriteBytes, dt)
		}
		out[key(name)] = dev
	}
	p.prev, p.prevAt = cur, now
	return out, nil
}

// diskUnits are keyed by last segment: the same for every mount point and
// device.
var diskUnits = map[string]string{
	"percent":           protocol.UnitPercent,
	"used_gb":           protocol.UnitGiB,
	"free_gb":           protocol.UnitGiB,
	"total_gb":          protocol.UnitGiB,
	"read_bytes":        protocol.UnitBytesTotal,
	"write_bytes":       protocol.UnitBytesTotal,
	"read_count":        protocol.UnitCountTotal,
	"write_count":       protocol.UnitCountTotal,
	"read_bytes_per_s":  protocol.UnitBytesPerS,
	"write_bytes_per_s": protocol.UnitBytesPerS,
}

// Units implements Uniter.
func (*DiskPlugin) Units() map[string]string { return diskUnits }

// Interface guards
var (
	_ Plugin = (*DiskPlugin)(nil)
	_ Uniter = (*DiskPlugin)(nil)
	_ Primer = (*DiskPlugin)(nil)
)
