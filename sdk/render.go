package sdk

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// RenderTitle returns a one-line summary of ev for notification titles and
// e-mail subjects: a tag for the kind and level, then the event's Text, for
// example
//
//	[CRITICAL] web02 is DOWN: no heartbeat for 2m10s (IPv4 and IPv6)
//	[RECOVERED] web02 is UP again after 5m12s
//	[ACKNOWLEDGED] web01 cpu_monitor.cpu_percent 97.2 ≥ 95 (CRITICAL) for 3 samples
//	[FLAPPING] web01 cpu_monitor.cpu_percent …
//	[TEST] web01 cpu_monitor.cpu_percent 97.2 ≥ 95 (CRITICAL) for 3 samples
//
// and for events without Text (daemons that predate it) a title built from
// the fields:
//
//	[CRITICAL] web01 cpu_monitor.cpu_percent = 95.5
//	[RECOVERED] web01 cpu_monitor.cpu_percent = 42 (was CRITICAL)
//	[UNKNOWN] web01 cpu_monitor.cpu_percent: no data
//	[TEST] hbd test notification for channel ops
func RenderTitle(ev Event) string {
	text := oneLine(ev.Text, maxTitleText)
	tag := "[" + string(ev.Level) + "] "
	switch ev.EffectiveKind() {
	case KindTest:
		tag = "[TEST] "
	case KindAcknowledged:
		tag = "[ACKNOWLEDGED] "
	case KindFlapping:
		tag = "[FLAPPING] "
	case KindResolved:
		tag = "[RECOVERED] "
	}
	switch {
	case text != "":
		return tag + text
	case ev.EffectiveKind() == KindTest && ev.Channel != "":
		return "[TEST] hbd test notification for channel " + ev.Channel
	case ev.EffectiveKind() == KindTest:
		return "[TEST] hbd test notification"
	case ev.Level == LevelUnknown:
		return fmt.Sprintf("%s%s %s: no data", tag, ev.Host, ev.MetricPath)
	case ev.IsRecovery() && ev.PreviousLevel != "":
		return fmt.Sprintf("%s%s %s = %s (was %s)", tag, ev.Host, ev.MetricPath, FormatValue(ev.Value), ev.PreviousLevel)
	default:
		return fmt.Sprintf("%s%s %s = %s", tag, ev.Host, ev.MetricPath, FormatValue(ev.Value))
	}
}

// RenderBody returns a plain-text, multi-line description of ev for message
// bodies: what happened (the event's Text when set), the host, metric and
// level, the value and threshold, since when and for how long, the owner,
// the daemon's message and the link to the host's page when known. A test
// event starts with a line saying it is a test.
func RenderBody(ev Event) string {
	var b strings.Builder
	if ev.EffectiveKind() == KindTest {
		b.WriteString("This is a test notification from hbd")
		if ev.Channel != "" {
			b.WriteString(" for channel " + ev.Channel)
		}
		b.WriteString(". If you can read it, the channel works.\n")
		if ev.Host == "" && strings.TrimSpace(ev.Text) == "" {
			if ev.Message != "" {
				b.WriteString("\n" + ev.Message + "\n")
			}
			return b.String()
		}
		b.WriteString("This sample shows how an alert looks:\n\n")
	}
	switch ev.EffectiveKind() {
	case KindAcknowledged:
		b.WriteString("Acknowledged: ")
	case KindFlapping:
		b.WriteString("Flapping: ")
	case KindRenotify:
		b.WriteString("Reminder: ")
	}
	if text := strings.TrimSpace(ev.Text); text != "" {
		b.WriteString(text + "\n\n")
		fmt.Fprintf(&b, "Host: %s\nMetric: %s\n", ev.Host, ev.MetricPath)
		if ev.PreviousLevel != "" && ev.PreviousLevel != ev.Level {
			fmt.Fprintf(&b, "Level: %s (was %s)\n", ev.Level, ev.PreviousLevel)
		} else {
			fmt.Fprintf(&b, "Level: %s\n", ev.Level)
		}
		renderDetails(&b, ev)
		return b.String()
	}
	switch {
	case ev.IsRecovery() && ev.PreviousLevel != "":
		fmt.Fprintf(&b, "%s %s has recovered: it is OK again after being %s.\n", ev.Host, ev.MetricPath, ev.PreviousLevel)
	case ev.IsRecovery():
		fmt.Fprintf(&b, "%s %s has recovered: it is OK again.\n", ev.Host, ev.MetricPath)
	case ev.Level == LevelUnknown:
		fmt.Fprintf(&b, "%s %s is UNKNOWN: no data has arrived for it.\n", ev.Host, ev.MetricPath)
	case ev.PreviousLevel != "" && ev.PreviousLevel != ev.Level:
		fmt.Fprintf(&b, "%s %s is %s (was %s).\n", ev.Host, ev.MetricPath, ev.Level, ev.PreviousLevel)
	default:
		fmt.Fprintf(&b, "%s %s is %s.\n", ev.Host, ev.MetricPath, ev.Level)
	}
	b.WriteString("\n")
	renderDetails(&b, ev)
	return b.String()
}

// renderDetails writes the value, times, count, message and link lines of
// RenderBody.
func renderDetails(b *strings.Builder, ev Event) {
	if ev.Level != LevelUnknown {
		fmt.Fprintf(b, "Value: %s\n", FormatValue(ev.Value))
	}
	if ev.Comparison != "" {
		fmt.Fprintf(b, "Threshold: %s %s\n", ev.Comparison, FormatValue(ev.Threshold))
	}
	if !ev.Since.IsZero() {
		fmt.Fprintf(b, "Since: %s\n", ev.Since.UTC().Format(time.RFC3339))
	}
	if !ev.EpisodeStart.IsZero() && !ev.EpisodeStart.Equal(ev.Since) {
		fmt.Fprintf(b, "Problem began: %s\n", ev.EpisodeStart.UTC().Format(time.RFC3339))
	}
	if d := ev.Duration(); d > 0 && ev.Level != LevelOK {
		fmt.Fprintf(b, "Duration: %s\n", FormatDuration(d))
	}
	if ev.Owner != "" {
		fmt.Fprintf(b, "Owner: %s\n", ev.Owner)
	}
	if ev.NotificationCount > 1 {
		fmt.Fprintf(b, "Notification: #%d\n", ev.NotificationCount)
	}
	if ev.Message != "" {
		b.WriteString("\n" + ev.Message + "\n")
	}
	if ev.URL != "" {
		b.WriteString("\n" + ev.URL + "\n")
	}
}

// maxTitleText bounds the Text in a title, in runes.
const maxTitleText = 400

// FormatValue formats a metric value with at most two decimals and no
// trailing zeros: 95.5, 42, 0.33, 1234567.89.
func FormatValue(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}
