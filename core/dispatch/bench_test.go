package dispatch_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/dispatch"
	"github.com/hbdmon/hbd/core/pluginhost"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/testutil"
)

// BenchmarkAlertToNotify measures the latency from an alert event handed
// to the dispatcher (what the evaluator does on a level change) to the
// notification arriving at the service: routing, the persisted queue
// entry, the queue worker, the gRPC call into hbd-notifier-webhook and
// its HTTP request. ns/op is the mean latency; p50 and p99 are reported.
func BenchmarkAlertToNotify(b *testing.B) {
	got := make(chan time.Time, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got <- time.Now() }))
	defer srv.Close()
	cfg := testutil.Config(b, `
watchhosts:
  web01: {key: "`+testutil.Key+`"}
notification_channels:
  hook: {type: webhook, url: "`+srv.URL+`", hosts: ["*"]}
`)
	host, _ := pht.Start(b, pht.Dir(b, pht.Webhook), pluginhost.Options{})
	st := testutil.Store(b, 10)
	conf := func() *config.Config { return cfg }
	policy := access.NewPolicy(conf, access.NewHosts(cfg))
	reg := newRegistry(b, conf, st, host, policy, nil)
	d, err := dispatch.New(dispatch.Options{Config: conf, Store: st, Plugins: host, Channels: reg, Policy: policy})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	a := alert.Event{Host: "web01", MetricPath: "cpu_monitor.cpu_percent", Level: "CRITICAL", PreviousLevel: "OK", Value: 97, Kind: alert.KindChange}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if names := d.Dispatch(a); len(names) != 1 {
			b.Fatalf("routed to %v", names)
		}
		lat = append(lat, (<-got).Sub(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
