package collect

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/net"

	"github.com/hbdmon/hbd/core/protocol"
)

// maxInterfaces keeps a network_monitor sample within
// protocol.MaxSampleFields (10 fields each, plus connections).
const maxInterfaces = 40

// NetworkPlugin reports, per interface (first 40 by name; "." in names
// replaced by "_"), bytes/packets sent and received, errors and drops in
// both directions since boot, and bytes_sent_per_s / bytes_recv_per_s since
// the previous reading; plus "connections": total, established, listen and
// time_wait socket counts (omitted where /proc/net is unavailable).
type NetworkPlugin struct {
	prev   map[string]net.IOCountersStat
	prevAt time.Time
}

// NewNetwork returns the network_monitor plugin.
func NewNetwork() *NetworkPlugin { return &NetworkPlugin{} }

// Name implements Plugin.
func (*NetworkPlugin) Name() string { return Network }

// Prime implements Primer: it takes the reading rates are measured from.
func (p *NetworkPlugin) Prime(ctx context.Context) error {
	_, err := p.interfaces(ctx)
	return err
}

// Collect implements Plugin.
func (p *NetworkPlugin) Collect(ctx context.Context) (map[string]any, error) {
	data, err := p.interfaces(ctx)
	if err != nil {
		return nil, err
	}
	if conns, err := connectionCounts(); err == nil {
		data["connections"] = conns
	}
	return data, nil
}

func (p *NetworkPlugin) interfaces(ctx context.Context) (map[string]any, error) {
	counters, err := net.IOCountersWithContext(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("network counters: %w", err)
	}
	now := time.Now()
	sort.Slice(counters, func(i, j int) bool { return counters[i].Name < counters[j].Name })
	cur := make(map[string]net.IOCountersStat, len(counters))
	data := map[string]any{}
	for _, c := range counters {
		k := key(c.Name)
		if k == "" || k == "connections" || len(data) >= maxInterfaces {
			continue
		}
		cur[c.Name] = c
		nic := map[string]any{
			"bytes_sent":   float64(c.BytesSent),
			"bytes_recv":   float64(c.BytesRecv),
			"packets_sent": float64(c.PacketsSent),
			"packets_recv": float64(c.PacketsRecv),
			"errin":        float64(c.Errin),
			"errout":       float64(c.Errout),
			"dropin":       float64(c.Dropin),
			"dropout":      float64(c.Dropout),
		}
		if prev, ok := p.prev[c.Name]; ok {
			dt := now.Sub(p.prevAt)
			nic["bytes_sent_per_s"] = counterRate(prev.BytesSent, c.BytesSent, dt)
			nic["bytes_recv_per_s"] = counterRate(prev.BytesRecv, c.BytesRecv, dt)
		}
		data[k] = nic
	}
	p.prev, p.prevAt = cur, now
	return data, nil
}

// TCP states as /proc/net/tcp writes them.
const (
	tcpEstablished = "01"
	tcpTimeWait    = "06"
	tcpListen      = "0A"
)

// connectionCounts reads the kernel socket tables directly. gopsutil's
// net.Connections would also map every socket to its process by walking
// /proc/*/fd, which is far too costly to do every few seconds on a busy
// host. total counts TCP and UDP sockets of both address families.
func connectionCounts() (map[string]any, error) {
	root := os.Getenv("HOST_PROC")
	if root == "" {
		root = "/proc"
	}
	var total, established, listen, timeWait float64
	read := 0
	for _, name := range []string{"tcp", "tcp6", "udp", "udp6"} {
		f, err := os.Open(filepath.Join(root, "net", name))
		if err != nil {
			continue
		}
		read++
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 {
				continue
			}
			total++
			if !strings.HasPrefix(name, "tcp") {
				continue
			}
			switch fields[3] {
			case tcpEstablished:
				established++
			case tcpListen:
				listen++
			case tcpTimeWait:
				timeWait++
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
	}
	if read == 0 {
		return nil, fmt.Errorf("no socket tables under %s/net", root)
	}
	return map[string]any{
		"total":       total,
		"established": established,
		"listen":      listen,
		"time_wait":   timeWait,
	}, nil
}

// networkUnits: the interface fields by last segment, the connection
// counts by path (an interface may be called "total").
var networkUnits = map[string]string{
	"bytes_sent":              protocol.UnitBytesTotal,
	"bytes_recv":              protocol.UnitBytesTotal,
	"packets_sent":            protocol.UnitCountTotal,
	"packets_recv":            protocol.UnitCountTotal,
	"errin":                   protocol.UnitCountTotal,
	"errout":                  protocol.UnitCountTotal,
	"dropin":                  protocol.UnitCountTotal,
	"dropout":                 protocol.UnitCountTotal,
	"bytes_sent_per_s":        protocol.UnitBytesPerS,
	"bytes_recv_per_s":        protocol.UnitBytesPerS,
	"connections.total":       protocol.UnitCount,
	"connections.established": protocol.UnitCount,
	"connections.listen":      protocol.UnitCount,
	"connections.time_wait":   protocol.UnitCount,
}

// Units implements Uniter.
func (*NetworkPlugin) Units() map[string]string { return networkUnits }

// Interface guards
var (
	_ Plugin = (*NetworkPlugin)(nil)
	_ Uniter = (*NetworkPlugin)(nil)
	_ Primer = (*NetworkPlugin)(nil)
)
