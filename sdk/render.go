package sdk

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// RenderTitle returns a one-line summary of ev for notification titles and
// e-mail subjects. When the daemon sent the event's Text it is the title
// after the level, for example
//
//	[CRITICAL] web02 is DOWN: no heartbeat for 2m10s (IPv4 and IPv6)
//	[RECOVERED] web02 is UP again after 5m12s
//
// and otherwise (daemons that predate Text) the title is built from the
// fields:
//
//	[CRITICAL] web01 cpu_monitor.cpu_percent = 95.5
//	[RECOVERED] web01 cpu_monitor.cpu_percent = 42 (was CRITICAL)
//	[UNKNOWN] web01 cpu_monitor.cpu_percent: no data
//	[TEST] hbd test notification for channel ops
func RenderTitle(ev Event) string {
	switch {
	case ev.Test:
		if ev.Channel != "" {
			return "[TEST] hbd test notification for channel " + ev.Channel
		}
		return "[TEST] hbd test notification"
	case oneLine(ev.Text, maxTitleText) != "" && ev.IsRecovery():
		return "[RECOVERED] " + oneLine(ev.Text, maxTitleText)
	case oneLine(ev.Text, maxTitleText) != "":
		return "[" + string(ev.Level) + "] " + oneLine(ev.Text, maxTitleText)
	case ev.Level == LevelUnknown:
		return fmt.Sprintf("[%s] %s %s: no data", ev.Level, ev.Host, ev.MetricPath)
	case ev.IsRecovery():
		return fmt.Sprintf("[RECOVERED] %s %s = %s (was %s)", ev.Host, ev.MetricPath, FormatValue(ev.Value), ev.PreviousLevel)
	default:
		return fmt.Sprintf("[%s] %s %s = %s", ev.Level, ev.Host, ev.MetricPath, FormatValue(ev.Value))
	}
}

// RenderBody returns a plain-text, multi-line description of ev for message
// bodies: what changed (the event's Text when set), the value, since when,
// the daemon's message and the link to the web UI when known.
func RenderBody(ev Event) string {
	var b strings.Builder
	if ev.Test {
		b.WriteString("This is a test notification from hbd")
		if ev.Channel != "" {
			b.WriteString(" for channel " + ev.Channel)
		}
		b.WriteString(". If you can read it, the channel works.\n")
		if ev.Message != "" {
			b.WriteString("\n" + ev.Message + "\n")
		}
		return b.String()
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
	case ev.IsRecovery():
		fmt.Fprintf(&b, "%s %s has recovered: it is OK again after being %s.\n", ev.Host, ev.MetricPath, ev.PreviousLevel)
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
	if !ev.Since.IsZero() {
		fmt.Fprintf(b, "Since: %s\n", ev.Since.UTC().Format(time.RFC3339))
	}
	if !ev.EpisodeStart.IsZero() && !ev.EpisodeStart.Equal(ev.Since) {
		fmt.Fprintf(b, "Problem began: %s\n", ev.EpisodeStart.UTC().Format(time.RFC3339))
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
