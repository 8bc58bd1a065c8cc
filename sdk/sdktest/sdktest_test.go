package sdktest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/internal/testnotifier"
	"github.com/hbdmon/hbd/sdk/sdktest"
)

func TestConformanceOfTestNotifier(t *testing.T) {
	receiver := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer receiver.Close()
	sdktest.Conformance(t, testnotifier.New(), sdk.Config{"url": receiver.URL, "token": "tok"})
}

func TestHarnessDeliversOverGRPC(t *testing.T) {
	var hits atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Event-Id") == "e1" {
			hits.Add(1)
		}
	}))
	defer receiver.Close()

	h := sdktest.Start(t, testnotifier.New())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Client.Notify(ctx, sdk.Config{"url": receiver.URL, "token": "tok"}, sdk.Event{ID: "e1"}); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if hits.Load() != 1 {
		t.Fatalf("receiver saw %d deliveries, want 1", hits.Load())
	}
	err := h.Client.Notify(ctx, sdk.Config{"url": receiver.URL, "token": "S3cretValue"}, sdk.Event{Message: testnotifier.Leak})
	if err == nil || strings.Contains(err.Error(), "S3cretValue") {
		t.Fatalf("Notify(leak) = %v, want redacted error", err)
	}
	if logs := h.Logs(); !strings.Contains(logs, "about to leak") || strings.Contains(logs, "S3cretValue") {
		t.Fatalf("plugin logs not captured or not redacted:\n%s", logs)
	}
}

func TestHarnessesAreIndependent(t *testing.T) {
	for i := range 3 {
		h := sdktest.Start(t, testnotifier.New())
		if _, err := h.Client.Schema(context.Background()); err != nil {
			t.Fatalf("harness %d: %v", i, err)
		}
	}
}

// BenchmarkNotifyRoundTrip measures Notify calls per second through the real
// go-plugin gRPC plumbing (client, server, conversions, redaction) with a
// notifier that does no I/O of its own.
func BenchmarkNotifyRoundTrip(b *testing.B) {
	h := sdktest.Start(b, testnotifier.New())
	cfg := sdk.Config{"url": "http://127.0.0.1:1/", "token": "bench-token-value"}
	ev := sdk.Event{ID: "bench", Host: "web01", MetricPath: "cpu_monitor.cpu_percent", Level: sdk.LevelCritical,
		Value: 95.5, Since: time.Now(), Time: time.Now(), Message: testnotifier.Drop}
	ctx := context.Background()

	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if err := h.Client.Notify(ctx, cfg, ev); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notify/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := h.Client.Notify(ctx, cfg, ev); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notify/s")
	})
}
