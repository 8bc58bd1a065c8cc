package sender

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/agent/internal/ingesttest"
	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/testutil"
)

var testUnits = protocol.Units{
	"cpu_monitor":        {"cpu_percent": "percent", "n": "count"},
	protocol.AgentPlugin: protocol.AgentUnits,
}

// The units reach a real daemon after its first answer announced them,
// in one batch, and not again within UnitsEvery; the daemon serves them.
func TestUnitsReachTheDaemonAfterItAnnouncedThem(t *testing.T) {
	cfg := testutil.Config(t, "watchhosts:\n  "+testHost+":\n    key: \""+string(testKey)+"\"\n")
	st := testutil.Store(t, 10)
	srv := api.New(api.Deps{
		Config: func() *config.Config { return cfg },
		Store:  st,
		HostKey: func(h string) ([]byte, bool, bool) {
			k, ok := cfg.HostKey(h)
			return k, false, ok
		},
	})
	var mu sync.Mutex
	var withUnits []bool
	web := ingesttest.Serve(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		body.ReadFrom(r.Body)
		mu.Lock()
		withUnits = append(withUnits, strings.Contains(body.String(), `,"units":{`))
		mu.Unlock()
		r.Body = http.NoBody
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(body.Bytes()))
		srv.Echo.ServeHTTP(w, r2)
	}))
	q := newSpool(t)
	s := New(q, Options{URL: web.URL, Host: testHost, Key: testKey, Interval: time.Second, Units: testUnits})
	now := int(time.Now().Unix())
	for round := range 3 {
		enqueue(t, q, now+round, now+round+1, 0)
		if err := s.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	got := append([]bool(nil), withUnits...)
	mu.Unlock()
	if want := []bool{false, true, false}; !slices.Equal(got, want) {
		t.Fatalf("batches carrying units %v, want %v (after the announcement, once)", got, want)
	}
	stored, err := st.Units(t.Context(), testHost)
	if err != nil || stored["cpu_monitor"]["cpu_percent"] != "percent" || stored[protocol.AgentPlugin][protocol.AgentLastSend] != "unixtime" {
		t.Fatalf("stored units %v (%v)", stored, err)
	}
	rec := httptest.NewRecorder()
	srv.Echo.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/0/hosts/"+testHost+"/plugins", nil))
	if !strings.Contains(rec.Body.String(), `"units":{"cpu_monitor.n":"count"}`) {
		t.Fatalf("plugins answer without the units: %s", rec.Body)
	}
}

// A daemon that never announced units never gets them (it would refuse
// the unknown field); one that announced them but refuses a batch
// carrying them gets the batch again without them, and no units after.
func TestUnitsNeverCostASample(t *testing.T) {
	old := ingesttest.New(t, testHost, testKey)
	old.Reject = func(b protocol.Batch) int {
		if b.Units != nil {
			t.Errorf("units sent to a daemon that did not announce them")
			return http.StatusBadRequest
		}
		return 0
	}
	web := ingesttest.Serve(t, "127.0.0.1:0", old)
	q := newSpool(t)
	s := New(q, Options{URL: web.URL, Host: testHost, Key: testKey, Interval: time.Second, Units: testUnits, UnitsEvery: -1})
	for i := range 3 {
		enqueue(t, q, i, i+1, 0)
		if err := s.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if got := numbers(old); !slices.Equal(got, seq(0, 3)) {
		t.Fatalf("old daemon got %v", got)
	}

	// Announces units, then refuses them.
	var mu sync.Mutex
	refusedUnits := 0
	picky := ingesttest.New(t, testHost, testKey)
	picky.Reject = func(b protocol.Batch) int {
		if b.Units != nil {
			mu.Lock()
			refusedUnits++
			mu.Unlock()
			return http.StatusBadRequest
		}
		return 0
	}
	announce := ingesttest.Serve(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		picky.ServeHTTP(rec, r)
		body := rec.Body.String()
		if rec.Code == http.StatusOK {
			body = strings.TrimSuffix(strings.TrimSpace(body), "}") + `,"units":true}`
		}
		w.WriteHeader(rec.Code)
		w.Write([]byte(body))
	}))
	q2 := newSpool(t)
	s2 := New(q2, Options{URL: announce.URL, Host: testHost, Key: testKey, Interval: time.Second, Units: testUnits, UnitsEvery: -1})
	for i := range 4 {
		enqueue(t, q2, i, i+1, 0)
		if err := s2.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if got := numbers(picky); !slices.Equal(got, seq(0, 4)) {
		t.Fatalf("daemon refusing units got %v, want every sample", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if refusedUnits != 1 {
		t.Fatalf("units refused %d times, want once (then no more)", refusedUnits)
	}
}
