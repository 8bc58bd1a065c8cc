package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hbdmon/hbd/core/testutil"
)

const pagedAlertsYAML = `
watchhosts:
  web01: {key: "` + testutil.Key + `"}
  web02: {key: "` + testutil.Key + `"}
  db01: {key: "` + testutil.Key + `"}
  db02: {key: "` + testutil.Key + `"}
thresholds:
  "cpu_monitor.cpu_percent": {warning: 80, critical: 90}
`

// activeBody is GET /api/0/alerts decoded.
type activeBody struct {
	Alerts []struct {
		Hostname string `json:"hostname"`
		Level    string `json:"level"`
	} `json:"alerts"`
	Summary   map[string]int  `json:"summary"`
	HostCount int             `json:"host_count"`
	Page      json.RawMessage `json:"page"`
}

func (b activeBody) hosts() string {
	var out []string
	for _, a := range b.Alerts {
		out = append(out, a.Hostname+"/"+a.Level)
	}
	return strings.Join(out, " ")
}

func (f *alertFixture) active(t *testing.T, user, query string) activeBody {
	t.Helper()
	code, body := f.call(t, user, http.MethodGet, "/api/0/alerts"+query, "")
	if code != http.StatusOK {
		t.Fatalf("%s %s: %d %s", user, query, code, body)
	}
	var out activeBody
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	if query == "" && (out.Page != nil || strings.Contains(body, `"page"`)) {
		t.Fatalf("the default answer has a page object: %s", body)
	}
	return out
}

// GET /api/0/alerts pages and filters by level and host glob; the summary
// always counts every alert the caller may see, the page object says how
// many the filters match, and access filtering still applies.
func TestActiveAlertsPagesAndFilters(t *testing.T) {
	f := newAlertFixtureWith(t, pagedAlertsYAML, false)
	for _, in := range []struct {
		host string
		cpu  float64
	}{{"web01", 95}, {"db01", 85}, {"web02", 86}, {"db02", 97}} {
		f.ingest(t, in.host, "cpu_monitor", map[string]any{"cpu_percent": in.cpu})
	}
	all := f.active(t, "admin", "")
	if got := all.hosts(); got != "web01/CRITICAL db02/CRITICAL db01/WARNING web02/WARNING" {
		t.Fatalf("default list %s", got)
	}
	wantSummary := map[string]int{"critical": 2, "warning": 2, "unknown": 0, "total": 4}
	for _, tc := range []struct {
		user, query, want, page string
		summary                 map[string]int
	}{
		{"admin", "?limit=1", "web01/CRITICAL", `{"offset":0,"limit":1,"matched":4,"next":1}`, wantSummary},
		{"admin", "?limit=2&offset=1", "db02/CRITICAL db01/WARNING", `{"offset":1,"limit":2,"matched":4,"next":3}`, wantSummary},
		{"admin", "?offset=3&limit=5", "web02/WARNING", `{"offset":3,"limit":5,"matched":4,"next":null}`, wantSummary},
		{"admin", "?offset=9", "", `{"offset":9,"limit":null,"matched":4,"next":null}`, wantSummary},
		{"admin", "?level=critical", "web01/CRITICAL db02/CRITICAL", `{"offset":0,"limit":null,"matched":2,"next":null}`, wantSummary},
		{"admin", "?level=UNKNOWN,WARNING", "db01/WARNING web02/WARNING", `{"offset":0,"limit":null,"matched":2,"next":null}`, wantSummary},
		{"admin", "?host=web*", "web01/CRITICAL web02/WARNING", `{"offset":0,"limit":null,"matched":2,"next":null}`, wantSummary},
		{"admin", "?host=web*&level=WARNING", "web02/WARNING", `{"offset":0,"limit":null,"matched":1,"next":null}`, wantSummary},
		{"admin", "?host=db01", "db01/WARNING", `{"offset":0,"limit":null,"matched":1,"next":null}`, wantSummary},
		{"admin", "?host=*2&limit=1", "db02/CRITICAL", `{"offset":0,"limit":1,"matched":2,"next":1}`, wantSummary},
		// mon sees web01 only: the summary and the matches count nothing else.
		{"mon", "?host=*", "web01/CRITICAL", `{"offset":0,"limit":null,"matched":1,"next":null}`, map[string]int{"critical": 1, "warning": 0, "unknown": 0, "total": 1}},
		{"mon", "?level=WARNING", "", `{"offset":0,"limit":null,"matched":0,"next":null}`, map[string]int{"critical": 1, "warning": 0, "unknown": 0, "total": 1}},
		{"bob", "?limit=10", "", `{"offset":0,"limit":10,"matched":0,"next":null}`, map[string]int{"critical": 0, "warning": 0, "unknown": 0, "total": 0}},
	} {
		got := f.active(t, tc.user, tc.query)
		if got.hosts() != tc.want || string(got.Page) != tc.page {
			t.Errorf("%s %s: %q page %s\nwant %q page %s", tc.user, tc.query, got.hosts(), got.Page, tc.want, tc.page)
		}
		for k, v := range tc.summary {
			if got.Summary[k] != v {
				t.Errorf("%s %s: summary %v, want %v", tc.user, tc.query, got.Summary, tc.summary)
				break
			}
		}
		wantHosts := map[string]int{"admin": 4, "mon": 1, "bob": 0}[tc.user]
		if got.HostCount != wantHosts {
			t.Errorf("%s %s: host_count %d, want %d", tc.user, tc.query, got.HostCount, wantHosts)
		}
	}
	// A larger limit is capped.
	if got := f.active(t, "admin", "?limit=99999"); !strings.Contains(string(got.Page), `"limit":1000,`) {
		t.Errorf("limit not capped: %s", got.Page)
	}
}

// Bad parameters are refused with a 400 naming the parameter.
func TestActiveAlertsRefusesBadParameters(t *testing.T) {
	f := newAlertFixtureWith(t, pagedAlertsYAML, false)
	for _, tc := range []struct{ query, param string }{
		{"?limit=0", "limit"}, {"?limit=-3", "limit"}, {"?limit=ten", "limit"},
		{"?offset=-1", "offset"}, {"?offset=1.5", "offset"}, {"?offset=99999999999999999999", "offset"},
		{"?level=OK", "level"}, {"?level=CRITICAL,", "level"}, {"?level=bad", "level"},
		{"?host=web/01", "host"}, {"?host=-web", "host"}, {"?host=***", "host"}, {"?host=%00", "host"},
		{"?host=" + strings.Repeat("a", 300), "host"},
	} {
		code, body := f.call(t, "admin", http.MethodGet, "/api/0/alerts"+tc.query, "")
		if code != http.StatusBadRequest || !strings.HasPrefix(body, `{"error":"`+tc.param+` must`) {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.query, code, body, tc.param)
		}
	}
}

// The answer carries an ETag of its body: asking again with it gets 304
// and no body while nothing changed, and the new answer once something
// did. Different callers seeing different lists get different tags.
func TestActiveAlertsETag(t *testing.T) {
	f := newAlertFixtureWith(t, pagedAlertsYAML, false)
	f.ingest(t, "web01", "cpu_monitor", map[string]any{"cpu_percent": 95.0})
	get := func(user, query, tag string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/api/0/alerts"+query, nil)
		req.Header.Set("X-User", user)
		if tag != "" {
			req.Header.Set("If-None-Match", tag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header.Get("ETag"), string(b)
	}
	code, tag, body := get("admin", "", "")
	if code != 200 || tag == "" || !strings.Contains(body, `"web01"`) {
		t.Fatalf("%d %q %s", code, tag, body)
	}
	if code, tag2, body := get("admin", "", tag); code != http.StatusNotModified || body != "" || tag2 != tag {
		t.Fatalf("unchanged: %d %q %q, want 304 with the same tag", code, tag2, body)
	}
	if code, _, _ := get("admin", "", `"other", `+tag); code != http.StatusNotModified {
		t.Fatalf("tag in a list: %d", code)
	}
	if _, other, _ := get("bob", "", ""); other == tag {
		t.Fatal("a caller seeing nothing got the same tag")
	}
	if code, _, _ := get("bob", "", tag); code != 200 {
		t.Fatalf("another caller's tag: %d, want 200", code)
	}
	if code, ptag, _ := get("admin", "?limit=1", tag); code != 200 || ptag == tag {
		t.Fatalf("a page with the whole list's tag: %d %q", code, ptag)
	}
	f.ingest(t, "web01", "cpu_monitor", map[string]any{"cpu_percent": 96.0})
	if code, tag2, body := get("admin", "", tag); code != 200 || tag2 == tag || !strings.Contains(body, `"last_value":96`) {
		t.Fatalf("after a change: %d %q %s", code, tag2, body)
	}
}

// host_count counts every evaluated host once: watchhosts entries and,
// with watch_dynamic, the hosts that registered themselves, a host that is
// both (it enrolled, then was added to watchhosts) once. An administrator's
// count is the store's count of dynamic hosts, not a listing of the fleet
// on every request; a restricted user's is what they may see (mon: web01).
func TestActiveAlertsHostCountWithDynamicHosts(t *testing.T) {
	f := newAlertFixtureWith(t, `
enroll_key: "`+testutil.Key+`"
watch_dynamic: true
watchhosts:
  web01: {key: "`+testutil.Key+`"}
  db01: {key: "`+testutil.Key+`"}
`, false)
	ctx := t.Context()
	for _, h := range []string{"web01", "dyn01", "web09"} {
		if _, err := f.st.EnsureHost(ctx, h, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.st.EnsureHost(ctx, "db01", false); err != nil {
		t.Fatal(err)
	}
	if n := len(f.ev.EvaluatedHosts()); n != 4 {
		t.Fatalf("%d evaluated hosts (%v), want 4", n, f.ev.EvaluatedHosts())
	}
	for user, want := range map[string]int{"admin": 4, "mon": 1, "bob": 0} {
		for _, q := range []string{"", "?limit=10"} {
			if got := f.active(t, user, q).HostCount; got != want {
				t.Errorf("%s %s: host_count %d, want %d", user, q, got, want)
			}
		}
	}
}
