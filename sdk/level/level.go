// Package level is the alert level shared by the daemon and every
// notifier: one type with one ordering. It imports nothing, so the agent
// and the daemon's domain packages use it without the plugin machinery of
// package sdk, which re-exports it as sdk.Level.
package level

import "fmt"

// Level is the level of an alert, in the daemon's spelling: OK,
// Unknown, Warning or Critical. The daemon and every
// notifier use this one type; its JSON and wire form is the bare string.
type Level string

// Alert levels, in severity order (see Level.Rank).
const (
	// OK: the metric is within its thresholds (or the host is UP).
	OK Level = "OK"
	// Unknown: no data; the last value is too old to say anything.
	Unknown Level = "UNKNOWN"
	// Warning: the warning threshold is crossed.
	Warning Level = "WARNING"
	// Critical: the critical threshold is crossed (or the host is
	// DOWN).
	Critical Level = "CRITICAL"
)

// Rank orders levels by severity: OK 0 < UNKNOWN 1 < WARNING 2 <
// CRITICAL 3, and -1 for anything else. This is the one ordering of
// levels: a channel's min_level passes levels ranked at or above it, an
// episode's worst level is its highest rank, and active alerts list the
// highest rank first.
//
// UNKNOWN sits above OK and below WARNING because it means "no data", not
// "over a threshold": something needs a look (a channel with min_level
// UNKNOWN is told), but it is not a confirmed problem, so a channel that
// asks for WARNING or CRITICAL is not woken by a host that merely went
// quiet, and a measured WARNING replaces UNKNOWN as an episode's worst.
func (l Level) Rank() int {
	switch l {
	case OK:
		return 0
	case Unknown:
		return 1
	case Warning:
		return 2
	case Critical:
		return 3
	}
	return -1
}

// Valid reports whether l is one of the four levels.
func (l Level) Valid() bool { return l.Rank() >= 0 }

// Parse returns the level spelled s ("OK", "UNKNOWN", "WARNING" or
// "CRITICAL", upper case as the daemon writes them), or an error.
func Parse(s string) (Level, error) {
	if l := Level(s); l.Valid() {
		return l, nil
	}
	return "", fmt.Errorf("unknown alert level %q: want OK, UNKNOWN, WARNING or CRITICAL", s)
}
