package sdk

import "github.com/hbdmon/hbd/sdk/level"

// Level is the level of an alert (package level): LevelOK, LevelUnknown,
// LevelWarning or LevelCritical, ordered by Level.Rank. Its JSON and wire
// form is the bare string.
type Level = level.Level

// Alert levels, in severity order (see Level.Rank).
const (
	// LevelOK: the metric is within its thresholds (or the host is UP).
	LevelOK = level.OK
	// LevelUnknown: no data; the last value is too old to say anything.
	LevelUnknown = level.Unknown
	// LevelWarning: the warning threshold is crossed.
	LevelWarning = level.Warning
	// LevelCritical: the critical threshold is crossed (or the host is
	// DOWN).
	LevelCritical = level.Critical
)

// ParseLevel returns the level spelled s ("OK", "UNKNOWN", "WARNING" or
// "CRITICAL", upper case as the daemon writes them), or an error.
func ParseLevel(s string) (Level, error) { return level.Parse(s) }
