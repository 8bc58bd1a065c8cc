package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/auth/authtest"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/webui"
)

// The public status page in auth mode: GET /status and
// GET /api/0/status_page answer without a session and show only the
// chosen host (web01), only its state, uptime figures and strip; the other
// host and every other endpoint stay closed. Without status_page both are
// 404.
func TestStatusPageIsPublicAndShowsOnlyItsHosts(t *testing.T) {
	cfg := authtest.Config(false)
	cfg.StatusPage = config.StatusPage{Title: "Shop status", Hosts: []string{authtest.Host}}
	env := authtest.New(t, cfg)
	routes, err := env.API.PageRoutes(webui.FS(), api.PageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env.API.Add(routes...)
	now := float64(time.Now().Unix())
	env.Store.RecordState(authtest.Host, "", "DOWN", now-7200)
	env.Store.RecordState(authtest.Host, "", "UP", now-3600)
	env.Store.RecordState(authtest.OtherHost, "", "DOWN", now-600)
	testutil.Eventually(t, "states stored", 5*time.Second, func() bool {
		a, _ := env.Store.States(context.Background(), authtest.Host, "", 0)
		b, _ := env.Store.States(context.Background(), authtest.OtherHost, "", 0)
		return len(a) == 2 && len(b) == 1
	})

	rec := env.Do(authtest.Request{Method: http.MethodGet, Path: "/api/0/status_page"})
	if rec.Code != 200 {
		t.Fatalf("anonymous status_page: %d %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	if strings.Contains(body, authtest.OtherHost) || strings.Contains(body, "owner") || strings.Contains(body, "key") {
		t.Fatalf("the status page exposes more than its host: %s", body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if keys := sortedKeys(raw); !slices.Equal(keys, []string{"bucket_seconds", "hosts", "title", "updated"}) {
		t.Fatalf("top-level fields %v", keys)
	}
	var hosts []map[string]json.RawMessage
	if err := json.Unmarshal(raw["hosts"], &hosts); err != nil || len(hosts) != 1 {
		t.Fatalf("hosts %s", raw["hosts"])
	}
	if keys := sortedKeys(hosts[0]); !slices.Equal(keys, []string{"name", "state", "strip", "uptime_24h", "uptime_30d", "uptime_7d"}) {
		t.Fatalf("host fields %v", keys)
	}
	var page api.StatusPageJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	h := page.Hosts[0]
	if page.Title != "Shop status" || h.Name != authtest.Host || h.State != "UP" || len(h.Strip) != 48 || h.Strip[47] != "UP" ||
		h.Uptime24h == nil || *h.Uptime24h < 49 || *h.Uptime24h > 51 {
		t.Fatalf("status %s", body)
	}

	rec = env.Do(authtest.Request{Method: http.MethodGet, Path: "/status"})
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "status.js") || strings.Contains(rec.Body.String(), `href="/live"`) {
		t.Fatalf("anonymous /status: %d %s", rec.Code, rec.Body)
	}
	// Everything else still needs a session.
	for _, p := range []string{"/api/0/hosts", "/api/0/hosts/" + authtest.Host, "/api/0/hosts/" + authtest.Host + "/uptime",
		"/api/0/hosts/" + authtest.OtherHost + "/uptime", "/api/0/uptime?hosts=" + authtest.Host, "/api/0/journal", "/live", "/hosts/" + authtest.Host} {
		rec := env.Do(authtest.Request{Method: http.MethodGet, Path: p})
		if rec.Code == 200 {
			t.Errorf("anonymous %s: 200 %s", p, rec.Body)
		}
	}
	// A logged-in user sees the same page.
	tok, _ := env.Login("monitor")
	if rec := env.Do(authtest.Request{Method: http.MethodGet, Path: "/api/0/status_page", Token: tok}); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"name":"web01"`) {
		t.Fatalf("with a session: %d %s", rec.Code, rec.Body)
	}

	// Without status_page there is no status page.
	off := authtest.Config(false)
	env.Reload(off)
	for _, p := range []string{"/api/0/status_page", "/status"} {
		if rec := env.Do(authtest.Request{Method: http.MethodGet, Path: p}); rec.Code != 404 {
			t.Errorf("%s without status_page: %d %s", p, rec.Code, rec.Body)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
