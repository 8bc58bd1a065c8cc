package api_test

import (
	"encoding/json"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/testutil"
)

type uptimeJSON struct {
	Uptime map[string]*float64 `json:"uptime"`
	Strip  struct {
		BucketSeconds float64 `json:"bucket_seconds"`
		Buckets       []struct {
			State     string   `json:"state"`
			UpPercent *float64 `json:"up_percent"`
		} `json:"buckets"`
	} `json:"strip"`
}

// Uptime comes from the persisted state history: a host UP for 10 of the
// last 12 hours with 1 hour DOWN (and unknown before) is up 10/11 of its
// known time; the strip's buckets show the DOWN hour, and nothing before
// the first record.
func TestHostUptimeFromStateHistory(t *testing.T) {
	cfg := testutil.Config(t, "watchhosts:\n  web01:\n    key: \""+testutil.Key+"\"\n  db02:\n    key: \""+testutil.Key+"\"\n")
	st := testutil.Store(t, 10)
	now := float64(time.Now().Unix())
	h := 3600.0
	// A minute past the hour, so the buckets (which start at the
	// handler's own now, a moment later) do not split on a change.
	st.RecordState("web01", "", "UP", now-11*h+60)
	st.RecordState("web01", "", "DOWN", now-6*h+60)
	st.RecordState("web01", "", "DEGRADED", now-5*h+60) // counts as up
	st.RecordState("web01", "", "UP", now-4*h+60)
	st.RecordState("web01", "ipv6", "DOWN", now-5*h) // a family's change is not the host's
	srv := api.New(api.Deps{Config: func() *config.Config { return cfg }, Store: st})
	web := httptest.NewServer(srv.Echo)
	t.Cleanup(web.Close)

	var body uptimeJSON
	testutil.Eventually(t, "the recorded states", 10*time.Second, func() bool {
		code, _, raw := get(t, web.URL+"/api/0/hosts/web01/uptime?span=43200&buckets=12")
		if code != 200 {
			t.Fatalf("%d %s", code, raw)
		}
		body = uptimeJSON{}
		json.Unmarshal([]byte(raw), &body)
		return body.Uptime["24h"] != nil && *body.Uptime["24h"] < 100
	})
	for _, w := range []string{"24h", "7d", "30d"} {
		if u := body.Uptime[w]; u == nil || math.Abs(*u-100*10.0/11.0) > 0.2 {
			t.Errorf("uptime %s = %v, want %.2f", w, u, 100*10.0/11.0)
		}
	}
	if n := len(body.Strip.Buckets); n != 12 || body.Strip.BucketSeconds != h {
		t.Fatalf("strip of %d buckets of %v s", n, body.Strip.BucketSeconds)
	}
	var states []string
	for _, b := range body.Strip.Buckets {
		states = append(states, b.State)
	}
	// Bucket i covers [now-12h+i h, now-11h+i h) and shows the worst
	// state held in it.
	want := []string{"", "UP", "UP", "UP", "UP", "UP", "DOWN", "DOWN", "DEGRADED", "UP", "UP", "UP"}
	if strings.Join(states, ",") != strings.Join(want, ",") {
		t.Errorf("strip %v, want %v", states, want)
	}
	if body.Strip.Buckets[0].UpPercent != nil {
		t.Errorf("a bucket before any record has up_percent %v", *body.Strip.Buckets[0].UpPercent)
	}

	// A host without history has no figures, not 0 % or 100 %.
	code, _, raw := get(t, web.URL+"/api/0/hosts/db02/uptime")
	if code != 200 || !strings.Contains(raw, `"24h":null`) {
		t.Errorf("db02: %d %s", code, raw)
	}
	for _, bad := range []string{"span=0", "buckets=x", "span=-5"} {
		if code, _, raw := get(t, web.URL+"/api/0/hosts/web01/uptime?"+bad); code != 400 || !strings.Contains(raw, `"error"`) {
			t.Errorf("%s: %d %s", bad, code, raw)
		}
	}
	if code, _, _ := get(t, web.URL+"/api/0/hosts/nope/uptime"); code != 404 {
		t.Errorf("unknown host: %d", code)
	}

	// Several hosts at once for the live page; unknown names are left out.
	code, _, raw = get(t, web.URL+"/api/0/uptime?hosts=web01,db02,nope&buckets=12")
	var fleet struct {
		Hosts map[string]struct {
			Uptime24h *float64 `json:"uptime_24h"`
			Strip     []string `json:"strip"`
		} `json:"hosts"`
	}
	json.Unmarshal([]byte(raw), &fleet)
	if code != 200 || len(fleet.Hosts) != 2 || fleet.Hosts["web01"].Uptime24h == nil || len(fleet.Hosts["web01"].Strip) != 12 || fleet.Hosts["db02"].Uptime24h != nil {
		t.Errorf("fleet uptime: %d %s", code, raw)
	} else if got := strings.Join(fleet.Hosts["web01"].Strip, ","); got != ",,,,,,UP,UP,UP,DOWN,DEGRADED,UP" {
		// 24 h in 2 h buckets: nothing known before -11 h.
		t.Errorf("fleet strip %s", got)
	}
	if code, _, _ := get(t, web.URL+"/api/0/uptime?hosts="+strings.Repeat("a,", 101)); code != 400 {
		t.Errorf("101 hosts: %d", code)
	}

	// The agent's hbc.yaml carries the host's key (owners and admins
	// only: the access matrix checks HostOwner).
	code, _, raw = get(t, web.URL+"/api/0/hosts/web01/agent_config")
	var ac struct {
		YAML string `json:"hbc_yaml"`
	}
	json.Unmarshal([]byte(raw), &ac)
	if code != 200 || !strings.Contains(ac.YAML, `host: "web01"`) || !strings.Contains(ac.YAML, `key: "`+testutil.Key+`"`) || !strings.Contains(ac.YAML, "api_url: \"http://127.0.0.1:") {
		t.Errorf("agent config: %d %s", code, raw)
	}
}
