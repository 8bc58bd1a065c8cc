package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/testutil"
)

// alertFleet is an API over a real evaluator watching hosts hosts, of
// which nonOK alert (half CRITICAL, half WARNING); every host reports a
// CPU and a disk metric. The hosts are watchhosts entries, or with dynamic
// hosts that registered themselves (watch_dynamic), as in a fleet enrolled
// with the enroll key. Requests are answered in process (no socket).
func alertFleet(b *testing.B, hosts, nonOK int, dynamic bool) *api.Server {
	b.Helper()
	cfg := testutil.Config(b, alertsYAML)
	st := testutil.Store(b, 10)
	cfg.WatchDynamic = dynamic
	for i := range hosts {
		name := fmt.Sprintf("host%05d", i)
		if !dynamic {
			cfg.Watchhosts[name] = config.WatchHost{Key: testutil.Key}
		} else if _, err := st.EnsureHost(context.Background(), name, true); err != nil {
			b.Fatal(err)
		}
	}
	ev, err := alert.New(cfg, st, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := ev.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ev.Stop(context.Background()) })
	now := float64(time.Now().Unix())
	for i := range hosts {
		cpu := 10.0
		switch {
		case i%(hosts/nonOK) != 0:
		case i%2 == 0:
			cpu = 95
		default:
			cpu = 85
		}
		ev.ObserveSamples(fmt.Sprintf("host%05d", i), []alert.Sample{
			{Plugin: "cpu_monitor", Timestamp: now, Paths: []string{"cpu_percent"}, Values: []float64{cpu}},
			{Plugin: "disk_monitor", Timestamp: now, Paths: []string{"/.percent"}, Values: []float64{50}},
		})
	}
	// The level changes are committed before timing starts.
	if err := ev.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	s := api.New(api.Deps{
		Config: func() *config.Config { return cfg },
		Store:  st,
		Guard:  roles,
		Policy: roles.policy(cfg),
	})
	s.Add(s.AlertRoutes(ev)...)
	if n := len(ev.ActiveAlerts()); n != nonOK {
		b.Fatalf("%d alerts, want %d", n, nonOK)
	}
	return s
}

// BenchmarkActiveAlerts measures GET /api/0/alerts as an administrator
// with 10,000 hosts of which 2,000 alert: the whole list (the default
// answer) and a page of 100.
func BenchmarkActiveAlerts(b *testing.B) { benchActiveAlerts(b, false) }

// BenchmarkActiveAlertsDynamic is BenchmarkActiveAlerts with the 10,000
// hosts registered dynamically (the fleet of make bench-load).
func BenchmarkActiveAlertsDynamic(b *testing.B) { benchActiveAlerts(b, true) }

func benchActiveAlerts(b *testing.B, dynamic bool) {
	s := alertFleet(b, 10000, 2000, dynamic)
	for _, bc := range []struct{ name, target string }{
		{"all", "/api/0/alerts"},
		{"page100", "/api/0/alerts?limit=100&offset=1000"},
		{"critical-page100", "/api/0/alerts?level=CRITICAL&limit=100"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest(http.MethodGet, bc.target, nil)
				req.Header.Set("X-User", "admin")
				rec := httptest.NewRecorder()
				s.Echo.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes/answer")
		})
	}
}
