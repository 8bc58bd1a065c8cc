package loadgen

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/hbdmon/hbd/core/heartbeat"
)

// plugins are the names of the four built-in agent plugins (core/agent/collect),
// whose data shapes the simulated agents send.
var plugins = []string{"cpu_monitor", "memory_monitor", "disk_monitor", "network_monitor"}

// fleetHost is one simulated agent: its name, the key it signs with and its
// heartbeat session.
type fleetHost struct {
	Name    string
	Key     []byte
	Session uint64
	// NonOK hosts report a cpu_percent above the bench thresholds, so the
	// daemon holds an alert for them.
	NonOK bool
}

// newFleet returns n hosts named prefix-00000 ... with keys derived from
// enrollKey as an agent configured with enroll_key derives its own
// (heartbeat.DeriveHostKey). Every nonOKEvery-th host (0: none) is NonOK.
func newFleet(prefix string, n int, enrollKey []byte, nonOKEvery int) []fleetHost {
	hosts := make([]fleetHost, n)
	base := rand.Uint64() >> 1
	for i := range hosts {
		name := fmt.Sprintf("%s-%05d", prefix, i)
		hosts[i] = fleetHost{
			Name:    name,
			Key:     heartbeat.DeriveHostKey(enrollKey, name),
			Session: base + uint64(i),
			NonOK:   nonOKEvery > 0 && i%nonOKEvery == 0,
		}
	}
	return hosts
}

// appendSample appends one sample of plugin p (an index into plugins) as
// the JSON object the agent sends, with values that vary by seq. The
// shapes are those of core/agent/collect: cpu_monitor and memory_monitor
// flat, disk_monitor per mount point plus "io" per device, network_monitor
// per interface plus "connections".
func appendSample(b []byte, p int, ts float64, seq uint64, nonOK bool) []byte {
	v := func(lo, span float64) float64 { return lo + float64(seq%97)/97*span }
	b = append(b, `{"plugin":"`...)
	b = append(b, plugins[p]...)
	b = append(b, `","timestamp":`...)
	b = strconv.AppendFloat(b, ts, 'f', 6, 64)
	b = append(b, `,"data":`...)
	f := func(name string, x float64) {
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
		b = strconv.AppendFloat(b, x, 'f', 2, 64)
	}
	obj := func(name string) {
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":{`...)
	}
	c := func() { b = append(b, ',') }
	end := func() { b = append(b, '}') }
	b = append(b, '{')
	switch p {
	case 0: // cpu_monitor
		cpu := v(5, 40)
		if nonOK {
			cpu = 97
		}
		f("cpu_percent", cpu)
		c()
		f("load_1min", v(0.1, 2))
		c()
		f("load_5min", v(0.1, 1.5))
		c()
		f("load_15min", v(0.1, 1))
		c()
		f("cpu_count", 8)
		c()
		f("frequency", 2400)
	case 1: // memory_monitor
		f("percent", v(20, 40))
		c()
		f("available_mb", v(4000, 8000))
		c()
		f("total_mb", 16000)
		c()
		f("used_mb", v(2000, 8000))
		c()
		f("swap_percent", v(0, 5))
		c()
		f("swap_total_mb", 2048)
		c()
		f("swap_used_mb", v(0, 100))
	case 2: // disk_monitor
		for i, mount := range []string{"/", "/boot"} {
			if i > 0 {
				c()
			}
			obj(mount)
			f("percent", v(30, 30))
			c()
			f("used_gb", v(30, 30))
			c()
			f("free_gb", v(40, 30))
			c()
			f("total_gb", 100)
			end()
		}
		c()
		obj("io")
		obj("sda")
		for i, name := range []string{"read_bytes", "write_bytes", "read_count", "write_count", "read_bytes_per_s", "write_bytes_per_s"} {
			if i > 0 {
				c()
			}
			f(name, float64(seq)*1000+float64(i))
		}
		end()
		end()
	case 3: // network_monitor
		for i, nic := range []string{"eth0", "lo"} {
			if i > 0 {
				c()
			}
			obj(nic)
			for j, name := range []string{"bytes_sent", "bytes_recv", "packets_sent", "packets_recv", "errin", "errout", "dropin", "dropout", "bytes_sent_per_s", "bytes_recv_per_s"} {
				if j > 0 {
					c()
				}
				f(name, float64(seq)*100+float64(j))
			}
			end()
		}
		c()
		obj("connections")
		f("total", v(50, 100))
		c()
		f("established", v(10, 50))
		c()
		f("listen", 12)
		c()
		f("time_wait", v(0, 20))
		end()
	}
	return append(b, "}}"...)
}

// appendBatch appends a batch body of n samples of one host, cycling
// through the four plugins; sample i is stamped ts + i µs, so every
// sample of a series has its own time.
func appendBatch(b []byte, n int, ts float64, seq uint64, nonOK bool) []byte {
	b = append(b, `{"samples":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSample(b, i%len(plugins), ts+float64(i)*1e-6, seq+uint64(i), nonOK)
	}
	return append(b, "]}"...)
}
