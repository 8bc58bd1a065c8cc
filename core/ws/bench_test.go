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
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/ws"
)

// BenchmarkFanout1000 fans plugin samples (about 1 KB each, distinct
// hosts, so nothing is coalesced) out to 1,000 real WebSocket clients over
// loopback, paced at 5 publishes/s (5,000 frames/s, 5 MB/s), with and
// without one client that never reads. Each iteration is one publish. It
// reports the achieved publish rate, delivered frames/s, the delivery
// latency (publish to a client's read) p50/p99 over 100 observing
// clients, the frames not delivered and the clients dropped. Run it with a
// fixed count so the stalled client's buffers fill (about 300 frames):
//
//	go test -run '^$' -bench Fanout1000 -benchtime 400x ./core/ws/
func BenchmarkFanout1000(b *testing.B) {
	for _, stalled := range []int{0, 1} {
		b.Run(fmt.Sprintf("stalled=%d", stalled), func(b *testing.B) { benchFanout(b, 1000, stalled, 5) })
	}
}

func benchFanout(b *testing.B, clients, stalled int, rate float64) {
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
				received.Add(1)
				if i%(clients/observers) != 0 {
					continue
				}
				seq := seqOf(msg)
				if seq >= 0 && seq < n {
					lat[i/(clients/observers)] = append(lat[i/(clients/observers)], time.Duration(time.Now().UnixNano()-published[seq].Load()))
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
	b.ReportMetric(float64(received.Load())/elapsed.Seconds(), "frames/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(want-received.Load()), "undelivered")
	b.ReportMetric(float64(h.Dropped()), "dropped")
	if stalled > 0 && !stalledGone {
		b.Logf("the stalled client was still connected when publishing ended")
	}
}

// seqOf returns a plugin frame's timestamp, the benchmark's sequence.
func seqOf(msg []byte) int {
	i := bytes.LastIndex(msg, []byte(`"timestamp":`))
	if i < 0 {
		return -1
	}
	rest := msg[i+len(`"timestamp":`):]
	j := bytes.IndexAny(rest, ",}")
	if j < 0 {
		return -1
	}
	v, err := strconv.Atoi(string(rest[:j]))
	if err != nil {
		return -1
	}
	return v
}
