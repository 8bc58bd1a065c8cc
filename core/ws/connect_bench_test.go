package ws_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/ws"
)

// fleetHosts returns n host states shaped like the daemon's snapshot
// (two connections, a last-seen time), built afresh on each call as the
// daemon builds them from the tracker.
func fleetHosts(n int) []ws.Host {
	out := make([]ws.Host, n)
	seen := 1.7e9
	for i := range out {
		out[i] = ws.Host{
			Name: fmt.Sprintf("host%05d", i), State: "UP", Since: 1.7e9, LastSeen: &seen, Watched: true,
			Connections: []heartbeat.ConnectionStatus{{}, {}},
		}
	}
	return out
}

// BenchmarkConnectSnapshot connects 100 administrators' clients at once to
// a hub whose snapshot has 10,000 hosts, over loopback; each reads its
// whole snapshot. One iteration is one such burst. It reports the burst's
// wall time, the process's CPU (clients included) per connecting client,
// the host snapshots taken per burst, and how long a publish running
// beside the burst (one per millisecond) took, p99 and max: publishing
// waits on the hub's lock.
//
//	go test -run '^$' -bench ConnectSnapshot -benchtime 3x ./core/ws/
func BenchmarkConnectSnapshot(b *testing.B) {
	for _, mode := range []string{"single", "batch"} {
		b.Run("mode="+mode, func(b *testing.B) { benchConnectSnapshot(b, 100, 10000, mode == "batch") })
	}
}

func benchConnectSnapshot(b *testing.B, clients, hosts int, batched bool) {
	var built atomic.Int64
	h := ws.New(ws.Options{
		Authenticate: func(r *http.Request) (access.Principal, bool) {
			return access.Principal{User: r.Header.Get("X-Test-User"), Admin: true}, true
		},
		Policy:     policy,
		MaxClients: clients,
		// Starved readers on a loaded machine must not be dropped: the
		// benchmark measures the connect, not the deadline.
		WriteTimeout: time.Minute,
		Snapshot: func() []ws.Host {
			built.Add(1)
			return fleetHosts(hosts)
		},
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

	var publishes []time.Duration
	var wall, cpu time.Duration
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		stop := make(chan struct{})
		pubDone := make(chan struct{})
		go func() {
			defer close(pubDone)
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				t0 := time.Now()
				// A sample: it waits on the hub's lock like any publish,
				// replaces its queued older self (so it cannot fill a
				// queue) and, unlike a host state, leaves the snapshot
				// shareable.
				h.PublishPlugin("elsewhere", "probe", 1, nil)
				publishes = append(publishes, time.Since(t0))
			}
		}()
		cpu0, t0 := cpuTime(), time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"X-Test-User": {fmt.Sprint("u", i)}}})
				if err != nil {
					errs <- err
					return
				}
				defer c.CloseNow()
				c.SetReadLimit(1 << 24)
				for got := 0; got < hosts; {
					_, msg, err := c.Read(ctx)
					if err != nil {
						errs <- fmt.Errorf("client %d after %d hosts: %w", i, got, err)
						return
					}
					got += bytes.Count(msg, []byte(`"type":"host"`))
				}
			}(i)
		}
		wg.Wait()
		wall += time.Since(t0)
		cpu += cpuTime() - cpu0
		close(stop)
		<-pubDone
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		for h.Clients() > 0 {
			time.Sleep(time.Millisecond)
		}
	}
	b.StopTimer()
	slices.Sort(publishes)
	b.ReportMetric(wall.Seconds()/float64(b.N), "s/burst")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N*clients), "cpu-ms/client")
	b.ReportMetric(float64(built.Load())/float64(b.N), "snapshots/burst")
	if len(publishes) > 0 {
		b.ReportMetric(float64(publishes[len(publishes)*99/100].Microseconds())/1e3, "publish-p99-ms")
		b.ReportMetric(float64(publishes[len(publishes)-1].Microseconds())/1e3, "publish-max-ms")
	}
}
