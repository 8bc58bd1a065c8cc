package sdk

import (
	"strings"
	"testing"
	"time"
)

func TestRender(t *testing.T) {
	since := time.Date(2024, 3, 23, 22, 0, 0, 0, time.UTC)
	base := Event{Host: "web01", MetricPath: "cpu_monitor.cpu_percent", Value: 95.5, Since: since, Channel: "ops"}
	tests := []struct {
		name      string
		mutate    func(*Event)
		title     string
		bodyParts []string
	}{
		{"critical", func(e *Event) { e.Level, e.PreviousLevel = LevelCritical, LevelWarning },
			"[CRITICAL] web01 cpu_monitor.cpu_percent = 95.5",
			[]string{"is CRITICAL (was WARNING)", "Value: 95.5", "Since: 2024-03-23T22:00:00Z"}},
		{"recovery", func(e *Event) { e.Level, e.PreviousLevel, e.Value = LevelOK, LevelCritical, 42 },
			"[RECOVERED] web01 cpu_monitor.cpu_percent = 42 (was CRITICAL)",
			[]string{"has recovered", "after being CRITICAL", "Value: 42"}},
		{"unknown", func(e *Event) { e.Level, e.PreviousLevel = LevelUnknown, LevelOK },
			"[UNKNOWN] web01 cpu_monitor.cpu_percent: no data",
			[]string{"no data has arrived"}},
		{"ok after unknown is no recovery", func(e *Event) { e.Level, e.PreviousLevel, e.Value = LevelOK, LevelUnknown, 3.14159 },
			"[OK] web01 cpu_monitor.cpu_percent = 3.14",
			[]string{"is OK (was UNKNOWN)"}},
		{"renotify", func(e *Event) { e.Level, e.NotificationCount, e.URL = LevelWarning, 3, "https://hbd.example/alerts" },
			"[WARNING] web01 cpu_monitor.cpu_percent = 95.5",
			[]string{"Notification: #3", "https://hbd.example/alerts"}},
		{"text is the title", func(e *Event) {
			e.Host, e.MetricPath, e.Level, e.PreviousLevel, e.Value = "web02", "heartbeat.host", LevelCritical, LevelOK, 2
			e.Text = "web02 is DOWN: no heartbeat for 2m10s (IPv4 and IPv6)"
			e.EpisodeStart = since.Add(-time.Minute)
		},
			"[CRITICAL] web02 is DOWN: no heartbeat for 2m10s (IPv4 and IPv6)",
			[]string{"web02 is DOWN: no heartbeat for 2m10s (IPv4 and IPv6)\n\n", "Metric: heartbeat.host", "Level: CRITICAL (was OK)",
				"Since: 2024-03-23T22:00:00Z", "Problem began: 2024-03-23T21:59:00Z"}},
		{"recovery text", func(e *Event) {
			e.Host, e.MetricPath, e.Level, e.PreviousLevel = "web02", "heartbeat.host", LevelOK, LevelCritical
			e.Text = "web02 is UP again\nafter 5m"
		},
			"[RECOVERED] web02 is UP again after 5m",
			[]string{"web02 is UP again\nafter 5m\n\n", "Level: OK (was CRITICAL)"}},
		{"blank text falls back", func(e *Event) { e.Level, e.Text = LevelWarning, " \n" },
			"[WARNING] web01 cpu_monitor.cpu_percent = 95.5",
			[]string{"web01 cpu_monitor.cpu_percent is WARNING."}},
		{"test shows its sample text", func(e *Event) { e.Test, e.Level, e.Text = true, LevelCritical, "web01 is DOWN" },
			"[TEST] web01 is DOWN",
			[]string{"test notification", "This sample shows how an alert looks:\n\nweb01 is DOWN\n"}},
		{"test", func(e *Event) { e.Test, e.Level = true, LevelCritical },
			"[TEST] hbd test notification for channel ops",
			[]string{"test notification", "channel ops"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := base
			tt.mutate(&ev)
			if got := RenderTitle(ev); got != tt.title {
				t.Errorf("RenderTitle = %q, want %q", got, tt.title)
			}
			body := RenderBody(ev)
			for _, p := range tt.bodyParts {
				if !strings.Contains(body, p) {
					t.Errorf("RenderBody = %q, missing %q", body, p)
				}
			}
		})
	}
}

func TestRenderTitleBoundsText(t *testing.T) {
	ev := Event{Level: LevelCritical, Text: strings.Repeat("x", 2*maxTitleText)}
	if got := []rune(RenderTitle(ev)); len(got) > maxTitleText+len("[CRITICAL] ")+1 {
		t.Errorf("title of a long text has %d runes", len(got))
	}
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{95.5: "95.5", 42: "42", 1.0 / 3: "0.33", 1234567.891: "1234567.89", -0.005: "-0.01"} {
		if got := FormatValue(v); got != want {
			t.Errorf("FormatValue(%v) = %q, want %q", v, got, want)
		}
	}
}
