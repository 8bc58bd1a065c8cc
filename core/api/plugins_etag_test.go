package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// GET /api/0/hosts/{h}/plugins carries an ETag of its body: asking again
// with it gets 304 and no body while the host's plugins are unchanged, and
// the new answer (with a new tag) after a sample arrives. ?pretty is
// another body, so another tag.
func TestHostPluginsETag(t *testing.T) {
	f := newAlertFixtureWith(t, pagedAlertsYAML, false)
	f.ingest(t, "web01", "cpu_monitor", map[string]any{"cpu_percent": 41.0})
	get := func(query, tag string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/api/0/hosts/web01/plugins"+query, nil)
		req.Header.Set("X-User", "admin")
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
	code, tag, body := get("", "")
	if code != 200 || tag == "" || !strings.Contains(body, `"cpu_percent":41`) {
		t.Fatalf("%d %q %s", code, tag, body)
	}
	if code, tag2, body := get("", tag); code != http.StatusNotModified || body != "" || tag2 != tag {
		t.Fatalf("unchanged: %d %q %q, want 304 with the same tag", code, tag2, body)
	}
	if code, ptag, body := get("?pretty", tag); code != 200 || ptag == tag || !strings.Contains(body, "\n  ") {
		t.Fatalf("?pretty with the compact answer's tag: %d %q %s", code, ptag, body)
	}
	f.ingest(t, "web01", "cpu_monitor", map[string]any{"cpu_percent": 42.0})
	code, tag2, body := get("", tag)
	if code != 200 || tag2 == tag || !strings.Contains(body, `"cpu_percent":42`) {
		t.Fatalf("after a sample: %d %q %s, want 200 with a new tag", code, tag2, body)
	}
	if code, _, _ := get("", tag2); code != http.StatusNotModified {
		t.Fatalf("the new tag: %d, want 304", code)
	}
}
