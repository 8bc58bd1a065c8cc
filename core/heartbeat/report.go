package heartbeat

import (
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// JournalLine is the change as the journal shows it, e.g. "web01 ipv6
// DOWN" or "web01 DOWN: never heard from".
func (ch Change) JournalLine() string {
	var b strings.Builder
	b.WriteString(ch.Host)
	if ch.Family != "" {
		b.WriteString(" " + string(ch.Family))
	}
	b.WriteString(" " + string(ch.To))
	switch {
	case ch.Reason != "":
		b.WriteString(": " + ch.Reason)
	case ch.To == StateDown && ch.LastSeen.IsZero():
		b.WriteString(": never heard from")
	}
	return b.String()
}

// LogChange writes a state change to log: UP and LATE at info, DOWN and
// DEGRADED at warn, with the host, the family (connection changes), when
// it was last heard from, and the reason when one is known.
func LogChange(log hclog.Logger, ch Change) {
	args := []any{"host", ch.Host}
	msg := "host " + string(ch.To)
	if ch.Family != "" {
		msg = "heartbeat connection " + string(ch.To)
		args = append(args, "family", ch.Family)
		if ch.Addr.IsValid() {
			args = append(args, "address", ch.Addr.String())
		}
	} else if len(ch.Families) > 0 {
		fams := make([]string, len(ch.Families))
		for i, f := range ch.Families {
			fams[i] = string(f)
		}
		args = append(args, "families", strings.Join(fams, ","))
	}
	if ch.LastSeen.IsZero() {
		args = append(args, "last_seen", "never")
	} else {
		args = append(args, "last_seen", ch.LastSeen.UTC().Format(time.RFC3339))
		if ch.To != StateUp {
			args = append(args, "silent_for", ch.Time.Sub(ch.LastSeen).Round(time.Second).String())
		}
	}
	if ch.Reason != "" {
		args = append(args, "reason", ch.Reason)
	}
	switch ch.To {
	case StateDown, StateDegraded:
		log.Warn(msg, args...)
	default:
		log.Info(msg, args...)
	}
}
