package sdk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestSafeIDIsStableURLSafeAndDistinct(t *testing.T) {
	ids := []string{
		"localhost/heartbeat.ipv4/1796096833639265060/1",
		"localhost/heartbeat.ipv4/1796096833639265060/2",
		"web 01/zürich ünï/1", "a%2Fb?c=d&e#f", "", "WEB01", "web01",
	}
	safe := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := map[string]string{}
	for _, id := range ids {
		got := SafeID(id)
		if !safe.MatchString(got) {
			t.Errorf("SafeID(%q) = %q, not 32 lower-case hex characters", id, got)
		}
		if got != SafeID(id) {
			t.Errorf("SafeID(%q) not stable", id)
		}
		if prev, dup := seen[got]; dup {
			t.Errorf("SafeID(%q) = SafeID(%q) = %q", id, prev, got)
		}
		seen[got] = id
	}
	// Pinned: the result must never change between SDK versions, or
	// destinations deduplicating by it would see retries as new events.
	if got := SafeID("web01/cpu/1/1"); got != "48cd5f98449ba133446b2bf69d59e4f7" {
		t.Errorf("SafeID changed: %q", got)
	}
}

func TestRetryAfter(t *testing.T) {
	base := errors.New("rate limited")
	if RetryAfter(nil, time.Second) != nil {
		t.Error("RetryAfter(nil) != nil")
	}
	err := fmt.Errorf("slack: %w", RetryAfter(Permanent(base), 3*time.Second))
	if d, ok := RetryAfterOf(err); !ok || d != 3*time.Second {
		t.Errorf("RetryAfterOf = %v, %v; want 3s, true", d, ok)
	}
	if IsPermanent(err) {
		t.Error("a RetryAfter error is permanent")
	}
	if !errors.Is(err, base) || err.Error() != "slack: rate limited" {
		t.Errorf("RetryAfter changed the error: %v", err)
	}
	if _, ok := RetryAfterOf(base); ok {
		t.Error("RetryAfterOf(plain error) ok")
	}
	if _, ok := RetryAfterOf(RetryAfter(base, -time.Second)); ok {
		t.Error("a negative wait is reported")
	}
	if d, _ := RetryAfterOf(RetryAfter(base, 1000*time.Hour)); d != MaxRetryAfter {
		t.Errorf("a huge wait = %v, want MaxRetryAfter", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 23, 22, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"1.5", 0, false},
		{"99999999999999", MaxRetryAfter, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestHTTPErrorCarriesRetryAfter(t *testing.T) {
	date := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	tests := []struct {
		status   int
		header   string
		wantWait bool
	}{
		{http.StatusTooManyRequests, "3", true},
		{http.StatusServiceUnavailable, date, true},
		{http.StatusTooManyRequests, "", false},
		{http.StatusTooManyRequests, "later", false},
		{http.StatusInternalServerError, "3", false}, // only 429 and 503 carry it
		{http.StatusBadRequest, "3", false},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if tt.header != "" {
				w.Header().Set("Retry-After", tt.header)
			}
			http.Error(w, "slow down", tt.status)
		}))
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, nil)
		err := DoHTTP(HTTPClient(5*time.Second), req)
		srv.Close()
		d, ok := RetryAfterOf(err)
		if ok != tt.wantWait {
			t.Errorf("%d with Retry-After %q: RetryAfterOf = %v, %v; want a wait %v", tt.status, tt.header, d, ok, tt.wantWait)
		}
		if tt.header == "3" && ok && d != 3*time.Second {
			t.Errorf("%d with Retry-After 3: wait %v", tt.status, d)
		}
		if tt.header == date && ok && (d < 58*time.Minute || d > time.Hour) {
			t.Errorf("Retry-After as a date an hour ahead: wait %v", d)
		}
		var se *HTTPStatusError
		if !errors.As(err, &se) || se.StatusCode != tt.status {
			t.Errorf("%d: errors.As(*HTTPStatusError) lost: %v", tt.status, err)
		}
		if want := tt.status == http.StatusBadRequest; IsPermanent(err) != want {
			t.Errorf("%d: IsPermanent = %v, want %v", tt.status, !want, want)
		}
	}
}

func TestChoiceAndMultilineFields(t *testing.T) {
	good := func() Schema {
		return Schema{Type: "x", Label: "X", Fields: []Field{
			{Key: "priority", Label: "Priority", Type: FieldChoice, Default: "normal",
				Options: []Option{{Value: "low", Label: "Low"}, {Value: "normal"}, {Value: "high", Label: "High"}}},
			{Key: "recipients", Label: "Recipients", Type: FieldMultiline, Required: true},
		}}
	}
	checks := []struct {
		name   string
		mutate func(*Schema)
		want   string
	}{
		{"well formed", func(*Schema) {}, ""},
		{"choice without options", func(s *Schema) { s.Fields[0].Options, s.Fields[0].Default = nil, "" }, "needs options"},
		{"duplicate option", func(s *Schema) { s.Fields[0].Options[1].Value = "low" }, "duplicate option"},
		{"empty option", func(s *Schema) { s.Fields[0].Options[2].Value = " " }, "value is empty"},
		{"default not an option", func(s *Schema) { s.Fields[0].Default = "urgent" }, "one of the listed options"},
		{"options on a text field", func(s *Schema) { s.Fields[1].Options = []Option{{Value: "a"}} }, "only for type"},
		{"too many options", func(s *Schema) {
			s.Fields[0].Options = nil
			for i := range MaxOptions + 1 {
				s.Fields[0].Options = append(s.Fields[0].Options, Option{Value: fmt.Sprint(i)})
			}
			s.Fields[0].Default = ""
		}, "more than"},
	}
	for _, tt := range checks {
		s := good()
		tt.mutate(&s)
		err := s.Check()
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: Check() = %v, want %q", tt.name, err, tt.want)
		}
	}
	s := good()
	validate := []struct {
		cfg  Config
		want error
	}{
		{Config{"recipients": "a@example.com\nb@example.com"}, nil},
		{Config{"recipients": "a", "priority": "high"}, nil},
		{Config{"recipients": "a", "priority": "High"}, ErrNotOption},
		{Config{"recipients": "a", "priority": "urgent"}, ErrNotOption},
		{Config{"recipients": strings.Repeat("x", MaxMultilineLen+1)}, ErrTooLong},
		{Config{}, ErrRequired},
	}
	for _, tt := range validate {
		err := s.Validate(tt.cfg.WithDefaults(s))
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("Validate(%.40v) = %v, want %v", tt.cfg, err, tt.want)
		}
	}
	set, err := NewSettings(s, Config{"recipients": "a\n b \n\nc"})
	if err != nil || strings.Join(set.List("recipients"), ",") != "a,b,c" || set.String("priority") != "normal" {
		t.Errorf("settings of a multiline field: %v, %q, %q", err, set.List("recipients"), set.String("priority"))
	}
}

func TestEventKindAndDuration(t *testing.T) {
	start := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		ev   Event
		want Kind
	}{
		{Event{Kind: KindAcknowledged, Level: LevelCritical}, KindAcknowledged},
		{Event{Test: true}, KindTest},
		{Event{Level: LevelOK, PreviousLevel: LevelCritical}, KindResolved},
		{Event{Level: LevelCritical, NotificationCount: 3}, KindRenotify},
		{Event{Level: LevelCritical, PreviousLevel: LevelOK, NotificationCount: 1}, KindFiring},
	}
	for _, tt := range tests {
		if got := tt.ev.EffectiveKind(); got != tt.want {
			t.Errorf("EffectiveKind(%+v) = %q, want %q", tt.ev, got, tt.want)
		}
	}
	ev := Event{EpisodeStart: start, Since: start.Add(time.Minute), Time: start.Add(2*time.Minute + 10*time.Second)}
	if ev.Duration() != 2*time.Minute+10*time.Second {
		t.Errorf("Duration = %v", ev.Duration())
	}
	if (Event{Time: start}).Duration() != 0 {
		t.Error("Duration without a start != 0")
	}
	if !(Event{Kind: KindResolved}).IsRecovery() {
		t.Error("a resolved event is no recovery")
	}
}
