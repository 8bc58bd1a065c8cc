package sdk

import "time"

// SampleEvent returns a realistic event of the given kind, as the daemon
// would send it: web01's CPU at 97.2 %, above its critical threshold of 95
// (back to 41.5 for KindResolved), with an ID holding "/", a space and
// non-ASCII characters as real IDs may. [CheckTemplates] renders templates
// against it; documentation and tests can show it. KindTest gives the same
// sample marked as a test.
func SampleEvent(kind Kind) Event {
	start := time.Date(2026, 3, 23, 21, 58, 0, 0, time.UTC)
	ev := Event{
		ID:         "web01/cpu_monitor.cpu_percent/1774303080000000000/1 zürich",
		Kind:       kind,
		Channel:    "ops",
		Host:       "web01",
		Owner:      "alice",
		MetricPath: "cpu_monitor.cpu_percent",
		Level:      LevelCritical, PreviousLevel: LevelWarning,
		Value: 97.2, Threshold: 95, Comparison: ">=",
		Since: start.Add(2 * time.Minute), EpisodeStart: start, Time: start.Add(3 * time.Minute),
		Text:              "web01 cpu_monitor.cpu_percent 97.2 ≥ 95 (CRITICAL) for 3 samples",
		NotificationCount: 1,
		URL:               "https://hbd.example.com/hosts/web01",
	}
	switch kind {
	case KindRenotify:
		ev.NotificationCount = 3
		ev.Time = start.Add(33 * time.Minute)
		ev.Message = "still CRITICAL"
	case KindResolved:
		ev.Level, ev.PreviousLevel, ev.Value, ev.Threshold = LevelOK, LevelCritical, 41.5, 80
		ev.Since, ev.Time = start.Add(12*time.Minute), start.Add(12*time.Minute)
		ev.Text = "web01 cpu_monitor.cpu_percent is OK again (41.5) after 12m0s"
		ev.NotificationCount = 2
	case KindAcknowledged:
		ev.Message = "acknowledged by bob"
		ev.NotificationCount = 2
	case KindFlapping:
		ev.Message = "flapping: level changes are not notified until it settles"
		ev.NotificationCount = 2
	case KindTest:
		ev.Test = true
	}
	return ev
}

// sampleHeartbeatEvent is a heartbeat outage, which has no threshold.
func sampleHeartbeatEvent() Event {
	start := time.Date(2026, 3, 23, 21, 58, 0, 0, time.UTC)
	return Event{
		ID: "web02/heartbeat/1774303080000000000/1", Kind: KindFiring, Channel: "ops",
		Host: "web02", MetricPath: "heartbeat", Level: LevelCritical, PreviousLevel: LevelOK, Value: 2,
		Since: start, EpisodeStart: start, Time: start.Add(2*time.Minute + 10*time.Second),
		Text: "web02 is DOWN: no heartbeat for 2m10s (IPv4 and IPv6)", NotificationCount: 1,
	}
}

// sampleEvents returns one sample of every kind, a heartbeat outage and an
// event from a daemon that predates Kind (no kind, no text, no link).
func sampleEvents() []Event {
	out := make([]Event, 0, len(Kinds)+2)
	for _, k := range Kinds {
		out = append(out, SampleEvent(k))
	}
	old := SampleEvent("")
	old.Text, old.URL, old.Owner, old.Comparison, old.Threshold = "", "", "", "", 0
	return append(out, sampleHeartbeatEvent(), old)
}
