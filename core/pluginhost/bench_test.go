package pluginhost_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hbdmon/hbd/core/pluginhost"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/sdk"
)

// BenchmarkPluginNotify measures Notify round trips through one real
// plugin process: daemon -> gRPC (mTLS) -> hbd-notifier-webhook -> HTTP
// POST to a local receiver answering 200 -> back.
func BenchmarkPluginNotify(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	h, _ := pht.Start(b, pht.Dir(b, pht.Webhook), pluginhost.Options{})
	cfg := sdk.Config{"url": srv.URL}
	ctx := context.Background()
	b.Run("sequential", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := h.Notify(ctx, "webhook", cfg, testEvent); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notify/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := h.Notify(ctx, "webhook", cfg, testEvent); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notify/s")
	})
}

// BenchmarkPluginValidate measures a bare call into the plugin process
// (gRPC and the SDK's plumbing, no network beyond it).
func BenchmarkPluginValidate(b *testing.B) {
	h, _ := pht.Start(b, pht.Dir(b, pht.Webhook), pluginhost.Options{})
	cfg := sdk.Config{"url": "https://example.com/hook"}
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if err := h.Validate(ctx, "webhook", cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
