package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
)

const cfgYAML = `
watchhosts:
  web01:
    key: "` + testutil.Key + `"
    owner: ""
`

type fixture struct {
	srv   *httptest.Server
	store *store.Store
	key   []byte
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	cfg := testutil.Config(t, cfgYAML)
	st := testutil.Store(t, 100)
	s := api.New(api.Deps{
		Config: func() *config.Config { return cfg },
		Store:  st,
		HostKey: func(h string) ([]byte, bool, bool) {
			k, ok := cfg.HostKey(h)
			return k, false, ok
		},
	})
	srv := httptest.NewServer(s.Echo)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, store: st, key: []byte(testutil.Key)}
}

func do(t *testing.T, req *http.Request) (int, map[string]any, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.StatusCode, m, string(b)
}

func get(t *testing.T, url string) (int, map[string]any, string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	return do(t, req)
}

func TestIngestThenReadReferenceShapes(t *testing.T) {
	f := newFixture(t)
	now := float64(time.Now().Unix())
	for i := 0; i < 3; i++ {
		code, body, raw := do(t, testutil.IngestRequest(t, f.srv.URL, "web01", f.key,
			testutil.Sample("cpu_monitor", now+float64(i), map[string]any{"cpu_percent": 40.0 + float64(i), "load_1min": 2.5}),
			testutil.Sample("disk_monitor", now+float64(i), map[string]any{"/": map[string]any{"percent": 65.0}}),
		))
		if code != 200 || body["accepted"] != 2.0 {
			t.Fatalf("ingest: %d %s", code, raw)
		}
	}
	code, body, raw := get(t, f.srv.URL+"/api/0/hosts/web01/plugins")
	if code != 200 || body["hostname"] != "web01" {
		t.Fatalf("%d %s", code, raw)
	}
	cpu := body["plugins"].(map[string]any)["cpu_monitor"].(map[string]any)
	if cpu["sample_count"] != 3.0 || cpu["data"].(map[string]any)["cpu_percent"] != 42.0 || cpu["timestamp"] != now+2 {
		t.Fatalf("cpu summary %v", cpu)
	}
	disk := body["plugins"].(map[string]any)["disk_monitor"].(map[string]any)["data"].(map[string]any)
	if disk["/"].(map[string]any)["percent"] != 65.0 {
		t.Fatalf("nested data not rebuilt: %v", disk)
	}

	code, body, raw = get(t, f.srv.URL+"/api/0/hosts/web01/plugins/cpu_monitor?limit=2")
	if code != 200 || body["plugin"] != "cpu_monitor" || body["sample_count"] != 2.0 {
		t.Fatalf("%d %s", code, raw)
	}
	samples := body["samples"].([]any)
	if samples[0].(map[string]any)["timestamp"] != now+2 || samples[1].(map[string]any)["timestamp"] != now+1 {
		t.Fatalf("not newest first: %s", raw)
	}

	code, body, raw = get(t, f.srv.URL+"/api/0/hosts/web01/plugins/cpu_monitor?since="+ftoa(now+1)+"&until="+ftoa(now+5))
	if code != 200 || body["sample_count"] != 2.0 {
		t.Fatalf("history: %d %s", code, raw)
	}

	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/api/0/hosts", nil)
	resp, _ := http.DefaultClient.Do(req)
	var hosts []map[string]any
	json.NewDecoder(resp.Body).Decode(&hosts)
	resp.Body.Close()
	if len(hosts) != 1 || hosts[0]["name"] != "web01" || hosts[0]["dyn"] != false || hosts[0]["last_seen"] == nil {
		t.Fatalf("hosts: %v", hosts)
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func jsonNum(f float64) string { b, _ := json.Marshal(f); return string(b) }

func TestErrorsAreJSON(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		method, path string
		code         int
		msg          string
	}{
		{"GET", "/api/0/hosts/nope/plugins", 404, "Host 'nope' not found"},
		{"GET", "/api/0/hosts/web01/plugins/nope", 404, "Plugin 'nope' not found for host 'web01'"},
		{"GET", "/api/0/hosts/web01/plugins/cpu_monitor?limit=abc", 400, "limit must be a positive integer"},
		{"GET", "/api/0/hosts/web01/plugins/cpu_monitor?limit=0", 400, "limit must be a positive integer"},
		{"GET", "/api/0/hosts/web01/plugins/cpu_monitor?since=yesterday", 400, "since must be a unix time"},
		{"GET", "/api/0/messages?limit=-1", 400, "limit must be a positive integer"},
		{"DELETE", "/api/0/hosts", 405, "Method DELETE not allowed"},
		{"GET", "/api/0/nothing", 404, "Not found"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, f.srv.URL+c.path, nil)
			code, body, raw := do(t, req)
			if code != c.code || !strings.Contains(body["error"].(string), c.msg) {
				t.Fatalf("got %d %s, want %d %q", code, raw, c.code, c.msg)
			}
		})
	}
}

func TestIngestRejectsBadInputAndStoresNothing(t *testing.T) {
	f := newFixture(t)
	now := float64(time.Now().Unix())
	good := testutil.Sample("cpu_monitor", now, map[string]any{"cpu_percent": 1.0})
	big := strings.Repeat("x", protocol.MaxBatchBytes+1)
	deep := map[string]any{"a": map[string]any{"b": map[string]any{"c": map[string]any{"d": map[string]any{"e": 1.0}}}}}
	cases := []struct {
		name string
		req  *http.Request
		code int
		msg  string
	}{
		{"wrong key", testutil.IngestRequest(t, f.srv.URL, "web01", []byte("wrong-key-wrong-key-wrong-key-xx"), good), 401, "bad signature"},
		{"unknown host", testutil.IngestRequest(t, f.srv.URL, "db01", f.key, good), 401, "unknown host"},
		{"oversized", testutil.SignedRequest(t, f.srv.URL, "web01", f.key, []byte(big)), 413, "larger than"},
		{"not json", testutil.SignedRequest(t, f.srv.URL, "web01", f.key, []byte("{")), 400, "invalid batch JSON"},
		{"unknown field", testutil.SignedRequest(t, f.srv.URL, "web01", f.key, []byte(`{"samples":[],"x":1}`)), 400, "invalid batch JSON"},
		{"empty", testutil.IngestRequest(t, f.srv.URL, "web01", f.key), 400, "no samples"},
		{"string leaf", testutil.IngestRequest(t, f.srv.URL, "web01", f.key, good, testutil.Sample("cpu_monitor", now, map[string]any{"x": "high"})), 400, "samples[1] (cpu_monitor)"},
		{"bad plugin name", testutil.IngestRequest(t, f.srv.URL, "web01", f.key, testutil.Sample("../etc", now, map[string]any{"x": 1.0})), 400, "plugin name"},
		{"too deep", testutil.IngestRequest(t, f.srv.URL, "web01", f.key, testutil.Sample("p", now, deep)), 400, "nesting deeper"},
		{"future", testutil.IngestRequest(t, f.srv.URL, "web01", f.key, testutil.Sample("p", now+3600, map[string]any{"x": 1.0})), 400, "timestamp"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body, raw := do(t, c.req)
			if code != c.code || !strings.Contains(body["error"].(string), c.msg) {
				t.Fatalf("got %d %s, want %d %q", code, raw, c.code, c.msg)
			}
		})
	}
	if p := f.store.Plugins("web01"); len(p) != 0 {
		t.Fatalf("rejected batches stored data: %v", p)
	}
	if _, ok := f.store.Host("db01"); ok {
		t.Fatal("unknown host recorded")
	}
}

func TestReplayedRequestOutsideSkewRejected(t *testing.T) {
	f := newFixture(t)
	body := []byte(`{"samples":[{"plugin":"p","timestamp":1,"data":{"x":1}}]}`)
	old := time.Now().Add(-time.Hour).Unix()
	req := testutil.SignedRequest(t, f.srv.URL, "web01", f.key, body)
	req.Header.Set(protocol.HeaderTimestamp, jsonNum(float64(old)))
	req.Header.Set(protocol.HeaderSignature, protocol.Sign(f.key, "web01", old, body))
	code, body2, _ := do(t, req)
	if code != 401 || !strings.Contains(body2["error"].(string), "hbd's clock") {
		t.Fatalf("%d %v", code, body2)
	}
}

// TestReplayedBatchIsNotAppliedTwice sends one signed request three times:
// the first stores it, the others answer 200 as duplicates and change
// nothing (the journal, the ring and subscribers see it once).
func TestReplayedBatchIsNotAppliedTwice(t *testing.T) {
	f := newFixture(t)
	events := 0
	f.store.Subscribe(func(store.SampleEvent) { events++ })
	body := []byte(`{"samples":[{"plugin":"cpu_monitor","timestamp":` + ftoa(float64(time.Now().Unix())) + `,"data":{"cpu_percent":5}}]}`)
	req := testutil.SignedRequest(t, f.srv.URL, "web01", f.key, body)
	var answers []string
	for i := 0; i < 3; i++ {
		r, _ := http.NewRequest(http.MethodPost, req.URL.String(), strings.NewReader(string(body)))
		r.Header = req.Header.Clone()
		code, _, raw := do(t, r)
		if code != 200 {
			t.Fatalf("attempt %d: %d %s", i, code, raw)
		}
		answers = append(answers, raw)
	}
	if !strings.Contains(answers[0], `"accepted":1`) || !strings.Contains(answers[2], `"duplicate":true`) {
		t.Fatalf("answers: %v", answers)
	}
	if events != 1 {
		t.Fatalf("batch published %d times", events)
	}
	if got, _ := f.store.Latest("web01", "cpu_monitor", 10); len(got) != 1 {
		t.Fatalf("%d samples in memory", len(got))
	}
}

// TestRejectedBatchMayBeResent: a batch refused for its content is not
// remembered, so fixing nothing and resending gets the same answer.
func TestRejectedBatchMayBeResent(t *testing.T) {
	f := newFixture(t)
	body := []byte(`{"samples":[{"plugin":"cpu_monitor","timestamp":1,"data":{"x":"bad"}}]}`)
	req := testutil.SignedRequest(t, f.srv.URL, "web01", f.key, body)
	for i := 0; i < 2; i++ {
		r, _ := http.NewRequest(http.MethodPost, req.URL.String(), strings.NewReader(string(body)))
		r.Header = req.Header.Clone()
		if code, _, raw := do(t, r); code != 400 {
			t.Fatalf("attempt %d: %d %s", i, code, raw)
		}
	}
}
