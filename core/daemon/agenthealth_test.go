package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/hbdmon/hbd/core/agent/sender"
	"github.com/hbdmon/hbd/core/agent/spool"
	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/testutil"
)

// agentHealth is the "agent" object of a host in GET /api/0/hosts.
type agentHealth struct {
	ReportedAt          float64  `json:"reported_at"`
	SpoolBytes          float64  `json:"spool_bytes"`
	SpoolBatches        float64  `json:"spool_batches"`
	OldestUnsentSeconds float64  `json:"oldest_unsent_seconds"`
	LastSend            *float64 `json:"last_send"`
	PluginErrors        float64  `json:"plugin_errors"`
	LastPluginError     string   `json:"last_plugin_error"`
}

func hostAgent(t *testing.T, base, name string) *agentHealth {
	t.Helper()
	resp, err := http.Get(base + "/api/0/hosts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var hosts []struct {
		Name  string       `json:"name"`
		Agent *agentHealth `json:"agent"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&hosts); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if h.Name == name {
			return h.Agent
		}
	}
	t.Fatalf("%s not in /api/0/hosts", name)
	return nil
}

// alertLevel is the level of a host's metric in
// GET /api/0/hosts/{host}/alerts ("" when it has no state).
func alertLevel(t *testing.T, base, host, metric string) string {
	t.Helper()
	var body struct {
		Alerts []struct {
			MetricPath string `json:"metric_path"`
			Level      string `json:"level"`
		} `json:"alerts"`
	}
	getJSON(t, base+"/api/0/hosts/"+host+"/alerts", &body)
	for _, a := range body.Alerts {
		if a.MetricPath == metric {
			return a.Level
		}
	}
	return ""
}

// An agent whose batches the daemon refuses keeps them spooled; the first
// batch that gets through carries the agent's health, so /api/0/hosts and
// /metrics show the spool's depth and the age of its oldest sample, and the
// default rule on hbc.oldest_unsent_seconds raises a WARNING. Once the
// daemon takes batches again the spool drains, the health says so and the
// alert recovers. The real agent packages (spool, sender) talk to a real
// daemon through a gate that answers 503 while closed.
func TestAgentHealthShowsAGrowingSpoolAndItsDrain(t *testing.T) {
	dir := t.TempDir()
	a := startInProcess(t, writeLivenessConfig(t, dir, testutil.FreePort(t), false))
	target, _ := url.Parse(a.base)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var closed atomic.Bool
	var allow, refused atomic.Int64
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if closed.Load() && allow.Add(-1) < 0 {
			refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"storage unavailable"}`)
			return
		}
		rec := httptest.NewRecorder()
		proxy.ServeHTTP(rec, r)
		t.Logf("gate: daemon answered %d", rec.Code)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	defer gate.Close()

	q, err := spool.Open(t.TempDir(), spool.Options{MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	snd := sender.New(q, sender.Options{
		URL: gate.URL, Host: "web01", Key: []byte(testutil.Key), Interval: time.Second,
		HealthEvery: -1, // a health sample in every flush
		Health: func() sender.Health {
			return sender.Health{PluginErrors: 2, LastPluginError: "exec_probe: exit status 1 \x1b[31mred"}
		},
	})
	appendSamples := func(n int, ts float64) {
		t.Helper()
		recs := make([][]byte, n)
		for i := range recs {
			recs[i], _ = json.Marshal(protocol.Sample{Plugin: "app_probe", Timestamp: ts + float64(i)/1000, Data: map[string]any{"n": float64(i)}})
		}
		if err := q.Append(recs...); err != nil {
			t.Fatal(err)
		}
	}
	flush := func() error { return snd.Flush(t.Context()) }

	// Healthy: the first answer tells the agent the daemon takes the
	// error text; the next health sample carries it.
	now := float64(time.Now().Unix())
	appendSamples(1, now)
	if err := flush(); err != nil {
		t.Fatal(err)
	}
	if err := flush(); err != nil {
		t.Fatal(err)
	}
	h := hostAgent(t, a.base, "web01")
	if h == nil || h.SpoolBytes != 0 || h.OldestUnsentSeconds != 0 || h.LastSend == nil || h.PluginErrors != 2 {
		t.Fatalf("agent health after a healthy send: %+v", h)
	}
	if !strings.HasPrefix(h.LastPluginError, "exec_probe: exit status 1") || strings.ContainsRune(h.LastPluginError, 0x1b) {
		t.Fatalf("last_plugin_error %q: want the text without its control character", h.LastPluginError)
	}
	if lv := alertLevel(t, a.base, "web01", "hbc.oldest_unsent_seconds"); lv != "OK" {
		t.Fatalf("hbc.oldest_unsent_seconds is %q after a healthy send, want OK", lv)
	}

	// The daemon refuses batches while the agent spools samples taken
	// 15 minutes ago (three batches' worth).
	closed.Store(true)
	old := now - 900
	appendSamples(2500, old)
	if err := flush(); err == nil {
		t.Fatal("Flush succeeded through a closed gate")
	}
	// One batch gets through, then the daemon refuses again.
	allow.Store(1)
	if err := flush(); err == nil {
		t.Fatal("Flush succeeded although the gate let one batch through")
	}
	if refused.Load() < 2 {
		t.Fatalf("the gate refused %d requests, want at least 2", refused.Load())
	}
	h = hostAgent(t, a.base, "web01")
	if h == nil || h.SpoolBytes <= 0 || h.SpoolBatches < 3 || h.OldestUnsentSeconds < 900 {
		t.Fatalf("agent health while the daemon refuses batches: %+v; want the spool's bytes, at least 3 batches and an oldest sample >= 900 s old", h)
	}
	testutil.Eventually(t, "hbc.oldest_unsent_seconds WARNING in the host's alerts and /metrics", 20*time.Second, func() bool {
		fams, _ := scrapeFamilies(t, a.base)
		v, ok := value(fams, "hbd_alert_level", map[string]string{"host": "web01", "metric": "hbc.oldest_unsent_seconds"})
		return ok && v == 2 && alertLevel(t, a.base, "web01", "hbc.oldest_unsent_seconds") == "WARNING"
	})
	fams, body := scrapeFamilies(t, a.base)
	for name, check := range map[string]func(float64) bool{
		"hbd_agent_spool_bytes":                 func(v float64) bool { return v == h.SpoolBytes },
		"hbd_agent_spool_batches":               func(v float64) bool { return v >= 3 },
		"hbd_agent_oldest_unsent_seconds":       func(v float64) bool { return v >= 900 },
		"hbd_agent_last_send_timestamp_seconds": func(v float64) bool { return v == *h.LastSend },
		"hbd_agent_plugin_errors_total":         func(v float64) bool { return v == 2 },
		"hbd_agent_health_timestamp_seconds":    func(v float64) bool { return v >= now },
	} {
		if v, ok := value(fams, name, map[string]string{"host": "web01"}); !ok || !check(v) {
			t.Errorf("%s{host=web01} = %v (present %v)", name, v, ok)
		}
		if n := len(fams[name].GetMetric()); n != 1 {
			t.Errorf("%s has %d series, want one per host that reported (web01)", name, n)
		}
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "hbd_agent_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}

	// Recovery: the spool drains and the next health sample says so.
	closed.Store(false)
	if err := flush(); err != nil {
		t.Fatal(err)
	}
	if err := flush(); err != nil {
		t.Fatal(err)
	}
	if recs, _, _ := q.Peek(1, 1<<20); len(recs) != 0 {
		t.Fatalf("spool not empty after recovery")
	}
	h = hostAgent(t, a.base, "web01")
	if h == nil || h.SpoolBytes != 0 || h.SpoolBatches != 0 || h.OldestUnsentSeconds != 0 {
		t.Fatalf("agent health after the drain: %+v", h)
	}
	testutil.Eventually(t, "hbc.oldest_unsent_seconds back to OK", 20*time.Second, func() bool {
		fams, _ := scrapeFamilies(t, a.base)
		_, active := value(fams, "hbd_alert_level", map[string]string{"host": "web01", "metric": "hbc.oldest_unsent_seconds"})
		v, _ := value(fams, "hbd_agent_spool_bytes", map[string]string{"host": "web01"})
		return !active && v == 0 && alertLevel(t, a.base, "web01", "hbc.oldest_unsent_seconds") == "OK"
	})
	var samples struct {
		Samples []any `json:"samples"`
	}
	getJSON(t, fmt.Sprintf("%s/api/0/hosts/web01/plugins/app_probe?since=%f&limit=10000", a.base, old-1), &samples)
	if len(samples.Samples) != 2501 {
		t.Fatalf("%d app_probe samples stored, want all 2501", len(samples.Samples))
	}
}
