package sdk

import "time"

// Event is one notification the daemon asks a notifier to deliver.
type Event struct {
	// ID identifies this notification and stays the same across delivery
	// retries, so a destination that deduplicates can use it.
	ID string
	// Channel is the name of the channel the event is delivered through.
	Channel string
	// Host is the monitored host's name, e.g. "web01".
	Host string
	// MetricPath is the alerting metric, e.g. "cpu_monitor.cpu_percent",
	// or "heartbeat.ipv4" for a missing heartbeat.
	MetricPath string
	// Level is the new level: LevelOK, LevelWarning, LevelCritical or
	// LevelUnknown.
	Level Level
	// PreviousLevel is the level before this change ("" when unknown or
	// when this is a repeat notification at the same level).
	PreviousLevel Level
	// Value is the metric value that caused the change (meaningless for
	// LevelUnknown).
	Value float64
	// Since is when the alert entered Level.
	Since time.Time
	// Time is when the daemon created this event.
	Time time.Time
	// Message is extra text from the daemon, e.g. the threshold crossed.
	Message string
	// Test is true for events sent from "test channel" in the UI or API.
	Test bool
	// NotificationCount is how many notifications this alert has produced,
	// this one included.
	NotificationCount int
	// URL links to the alert in the hbd web UI; empty when the daemon does
	// not know its public address.
	URL string
	// Text says what happened in words, e.g. "web02 is DOWN: no heartbeat
	// for 2m10s (IPv4 and IPv6)" or "web01 cpu_monitor.cpu_percent 97.2 ≥
	// 95 (CRITICAL) for 3 samples". Empty from daemons that predate it (and
	// for test events); RenderTitle and RenderBody then fall back to a
	// rendering of the fields above.
	Text string
	// EpisodeStart is when the alert episode began (the metric left OK); a
	// recovery carries the start of the episode it ends. Zero when unknown.
	EpisodeStart time.Time
}

// IsRecovery reports whether the event announces a return to OK from a
// problem level. Leaving UNKNOWN (no data) is not a recovery.
func (e Event) IsRecovery() bool {
	return e.Level == LevelOK && (e.PreviousLevel == LevelWarning || e.PreviousLevel == LevelCritical)
}
