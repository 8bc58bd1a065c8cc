package sdk

import "time"

// Kind says why an [Event] was sent. Daemons that predate it (protocol 1)
// send "": use [Event.EffectiveKind] to read a kind that is never empty.
type Kind string

// Event kinds.
const (
	// KindFiring: a metric or host entered a problem level (WARNING,
	// CRITICAL or UNKNOWN), or moved between problem levels.
	KindFiring Kind = "firing"
	// KindRenotify: a reminder that a problem level persists (the
	// channel's renotify interval passed).
	KindRenotify Kind = "renotify"
	// KindResolved: back to OK after a notified problem.
	KindResolved Kind = "resolved"
	// KindAcknowledged: a user acknowledged the problem (Event.Message says
	// who); no reminders follow until the level changes.
	KindAcknowledged Kind = "acknowledged"
	// KindFlapping: the level changes too often; its flips are not
	// notified until it is stable again.
	KindFlapping Kind = "flapping"
	// KindTest: a test from "test channel" in the web UI or the API: a
	// realistic sample event, not a real alert (Event.Test is true too).
	KindTest Kind = "test"
)

// Kinds lists every Kind, in the order above.
var Kinds = []Kind{KindFiring, KindRenotify, KindResolved, KindAcknowledged, KindFlapping, KindTest}

// Event is one notification the daemon asks a notifier to deliver.
//
// A heartbeat alert ("web02 is DOWN"), as the daemon sends it:
//
//	Event{ID: "web02/heartbeat/1796096833639265060/1", Kind: KindFiring,
//	  Channel: "ops", Host: "web02", Owner: "alice", MetricPath: "heartbeat",
//	  Level: LevelCritical, PreviousLevel: LevelOK, Value: 2,
//	  Text: "web02 is DOWN: no heartbeat for 2m10s (IPv4 and IPv6)",
//	  URL: "https://hbd.example.com/hosts/web02", NotificationCount: 1, ...}
//
// and a threshold alert:
//
//	Event{Kind: KindFiring, Host: "web01", MetricPath: "cpu_monitor.cpu_percent",
//	  Level: LevelCritical, PreviousLevel: LevelWarning, Value: 97.2,
//	  Threshold: 95, Comparison: ">=",
//	  Text: "web01 cpu_monitor.cpu_percent 97.2 ≥ 95 (CRITICAL) for 3 samples", ...}
type Event struct {
	// ID identifies this notification and stays the same across delivery
	// retries, so a destination that deduplicates can use it. Its format
	// is opaque and may change: it can hold "/", spaces and any Unicode
	// character. Never put it into a URL, a file name or a header as is:
	// use [SafeID](ev.ID), which is stable and URL-safe.
	ID string
	// Kind says why the event was sent (firing, renotify, resolved,
	// acknowledged, flapping, test); "" from daemons that predate it, see
	// [Event.EffectiveKind].
	Kind Kind
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
	// LevelUnknown; for heartbeats 0 UP, 1 LATE or DEGRADED, 2 DOWN).
	Value float64
	// Threshold is the configured limit Value was compared with, for the
	// event's level (for a recovery: the WARNING limit). Meaningful only
	// when Comparison is not "".
	Threshold float64
	// Comparison is the operator of the alert rule: ">=" (the problem is a
	// value at or above Threshold) or "<=" (at or below). "" when no
	// threshold applies (heartbeats, no data).
	Comparison string
	// Owner is the user name of the host's owner; "" when the host has no
	// owner.
	Owner string
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
	// URL links to the host's page in the hbd web UI, built from the
	// daemon's public_url setting; empty when that is not configured.
	URL string
	// Text says what happened in words, e.g. "web02 is DOWN: no heartbeat
	// for 2m10s (IPv4 and IPv6)" or "web01 cpu_monitor.cpu_percent 97.2 ≥
	// 95 (CRITICAL) for 3 samples". Empty from daemons that predate it (and
	// for test events); RenderTitle and RenderBody then fall back to a
	// rendering of the fields above. Test events carry a sample Text.
	Text string
	// EpisodeStart is when the alert episode began (the metric left OK); a
	// recovery carries the start of the episode it ends. Zero when unknown.
	EpisodeStart time.Time
}

// EffectiveKind returns e.Kind, or for an event from a daemon that
// predates Kind the kind its other fields imply: KindTest for a test,
// KindResolved for a recovery, KindRenotify for a repeat notification at the
// same level, else KindFiring.
func (e Event) EffectiveKind() Kind {
	switch {
	case e.Kind != "":
		return e.Kind
	case e.Test:
		return KindTest
	case e.IsRecovery():
		return KindResolved
	case e.NotificationCount > 1 && e.PreviousLevel == "":
		return KindRenotify
	default:
		return KindFiring
	}
}

// Duration returns how long the problem has lasted at the event's time:
// Time minus EpisodeStart (or minus Since when EpisodeStart is unknown).
// For a resolved event it is the length of the episode that ended. Zero
// when the times are unknown.
func (e Event) Duration() time.Duration {
	start := e.EpisodeStart
	if start.IsZero() {
		start = e.Since
	}
	if start.IsZero() || e.Time.IsZero() || e.Time.Before(start) {
		return 0
	}
	return e.Time.Sub(start)
}

// IsRecovery reports whether the event announces a return to OK from a
// problem level. Leaving UNKNOWN (no data) is not a recovery.
func (e Event) IsRecovery() bool {
	if e.Kind == KindResolved {
		return true
	}
	return e.Level == LevelOK && (e.PreviousLevel == LevelWarning || e.PreviousLevel == LevelCritical)
}
