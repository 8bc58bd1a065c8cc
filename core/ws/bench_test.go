package ws_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/ws"
)

// BenchmarkFanout1000 fans plugin samples (about 1 KB each, distinct
// hosts, so nothing is coalesced) out to 1,000 real WebSocket clients over
// loopback, paced at 5 or 50 publishes/s (5,000 or 50,000 messages/s to
// deliver), with and without one client that never reads, to clients
// taking one frame per message (mode=single) or multi-message frames
// (mode=batch, ?batch=1). Each iteration is one publish. It reports the
// achieved publish rate, delivered messages/s, the process's CPU
// (user+system, clients included) per delivered message, the delivery
// latency (publish to a client's read) p50/p99 over 100 observing
// clients, the messages not delivered and the clients dropped. Run it with
// a fixed count so the stalled client's buffers fill (about 300 frames):
//
//	go test -run '^$' -bench 'Fanout1000//rate=5$/' -benchtime 400x ./core/ws/
//	go test -run '^$' -bench 'Fanout1000//rate=50/' -benchtime 1000x ./core/ws/
func BenchmarkFanout1000(b *testing.B) {
	for _, mode := range []string{"single", "batch"} {
		for _, rate := range []float64{5, 50} {
			for _, stalled := range []int{0, 1} {
				b.Run(fmt.Sprintf("mode=%s/rate=%g/stalled=%d", mode, rate, stalled), func(b *testing.B) {
					benchFanout(b, 1000, stalled, rate, mode == "batch")
				})
			}
		}
	}
}

// cpuTime is the process's user+system CPU so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchFanout(b *testing.B, clients, stalled int, rate float64, batched bool) {
	h := ws.New(ws.Options{
		Authenticate: func(r *http.Request) (access.Principal, bool) {
			// Distinct administrators: every host visible, no per-user cap.
			return access.Principal{User: r.Header.Get("X-Test-User"), Admin: true}, true
		},
		Policy: policy,
		// Explicit, so the benchmark also runs against a hub whose
		// default was lower.
		MaxClients: clients + stalled,
	})
	srv := httptest.NewServer(h.PortHandler())
	defer srv.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Shutdown(ctx)
	}()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + ws.Path
	if batched {
		url += "?batch=1"
	}

	n := b.N
	published := make([]atomic.Int64, n) // publish time by sequence, unix ns
	const observers = 100
	lat := make([][]time.Duration, observers)
	var received atomic.Int64
	var wg sync.WaitGroup
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var conns []*websocket.Conn
	dial := func(i int) *websocket.Conn {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"X-Test-User": {fmt.Sprint("u", i)}}})
		if err != nil {
			b.Fatalf("dial %d: %v", i, err)
		}
		c.SetReadLimit(1 << 24) // a batched frame carries up to MaxBatch messages
		conns = append(conns, c)
		return c
	}
	for i := 0; i < clients; i++ {
		c := dial(i)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for {
				_, msg, err := c.Read(ctx)
				if err != nil {
					return
				}
				if i%(clients/observers) != 0 {
					received.Add(int64(bytes.Count(msg, []byte(`{"type":`))))
					continue
				}
				now := time.Now().UnixNano()
				for _, seq := range seqsOf(msg) {
					received.Add(1)
					if seq >= 0 && seq < n {
						lat[i/(clients/observers)] = append(lat[i/(clients/observers)], time.Duration(now-published[seq].Load()))
					}
				}
			}
		}(i)
	}
	for i := 0; i < stalled; i++ {
		dial(clients + i) // never read
	}
	for h.Clients() < clients+stalled {
		time.Sleep(time.Millisecond)
	}

	data := map[string]any{}
	for i := 0; i < 20; i++ {
		data[fmt.Sprintf("/mnt/volume%02d", i)] = map[string]any{"percent": 42.5, "used_gb": 123.25}
	}
	every := time.Duration(float64(time.Second) / rate)
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for seq := 0; seq < n; seq++ {
		if d := time.Until(start.Add(time.Duration(seq) * every)); d > 0 {
			time.Sleep(d)
		}
		published[seq].Store(time.Now().UnixNano())
		h.PublishPlugin(fmt.Sprint("host", seq%10000), "disk_monitor", float64(seq), data)
	}
	elapsed := time.Since(start)
	// Let the last frames arrive before reading the figures.
	want := int64(n) * int64(clients)
	stalledGone := h.Clients() <= clients
	for deadline := time.Now().Add(30 * time.Second); received.Load() < want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	stop()
	for _, c := range conns {
		c.CloseNow()
	}
	wg.Wait()

	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))]) / 1e6
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "publishes/s")
	b.ReportMetric(float64(received.Load())/elapsed.Seconds(), "msgs/s")
	if r := received.Load(); r > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(r), "cpu-µs/msg")
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(want-received.Load()), "undelivered")
	b.ReportMetric(float64(h.Dropped()), "dropped")
	if stalled > 0 && !stalledGone {
		b.Logf("the stalled client was still connected when publishing ended")
	}
}

// seqsOf returns the timestamps of a frame's plugin messages (one, or
// several in a batched frame), the benchmark's sequence numbers.
func seqsOf(msg []byte) []int {
	var seqs []int
	for {
		i := bytes.Index(msg, []byte(`"timestamp":`))
		if i < 0 {
			return seqs
		}
		msg = msg[i+len(`"timestamp":`):]
		j := bytes.IndexAny(msg, ",}")
		if j < 0 {
			return seqs
		}
		v, err := strconv.Atoi(string(msg[:j]))
		if err != nil {
			v = -1
		}
		seqs = append(seqs, v)
	}
}
