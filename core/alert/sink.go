package alert

import (
	"fmt"
)

// Journaler records journal lines.
type Journaler interface {
	Journal(host, msg string)
}

// JournalSink returns a Sink that writes each event to the journal, e.g.
// "notify web01 cpu_monitor.cpu_percent WARNING (change #1): web01
// cpu_monitor.cpu_percent 85.5 ≥ 80 (WARNING)". The daemon uses it while
// no notification dispatcher is wired in.
func JournalSink(j Journaler) Sink {
	return SinkFunc(func(ev Event) {
		text := ev.Text
		if text == "" {
			text = ev.Detail
		}
		j.Journal(ev.Host, fmt.Sprintf("notify %s %s %s (%s #%d): %s", ev.Host, ev.MetricPath, ev.Level, ev.Kind, ev.NotificationCount, text))
	})
}
