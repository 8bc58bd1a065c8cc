package protocol

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Units of measurement travel with sample batches (docs/PROTOCOL.md, "Units"):
// the optional top-level "units" object maps a plugin name to its declared
// units, each keyed by a metric path inside the plugin's data
// ("workers.busy") or by a last path segment ("bytes_sent" names every
// "<nic>.bytes_sent"):
//
//	{"samples": [...], "units": {"cpu_monitor": {"cpu_percent": "percent", "frequency": "MHz"}}}
//
// The agent sends it only to a daemon whose 200 answer said "units": true
// (older daemons refuse unknown fields), and then only now and again
// (every UnitsEvery): units hardly ever change, and the daemon keeps them.
// Older agents never send it; their metrics have no unit and the web UI
// guesses from the key names as before.

// Unit names: a small closed vocabulary, so that every consumer knows how
// to show each. Counters ("..._total") are totals since some start (boot,
// process start) that only grow; the web UI shows their rate.
const (
	UnitNone         = ""             // a plain number (a load average, a ratio)
	UnitPercent      = "percent"      // 0-100
	UnitCount        = "count"        // a number of things (CPUs, sockets, queue depth)
	UnitBytes        = "bytes"        // a size in bytes
	UnitKiB          = "KiB"          // 1024 bytes
	UnitMiB          = "MiB"          // 1024² bytes (the agent's *_mb)
	UnitGiB          = "GiB"          // 1024³ bytes (the agent's *_gb)
	UnitBytesPerS    = "bytes/s"      // a rate in bytes per second
	UnitCountPerS    = "count/s"      // a rate of things per second
	UnitMHz          = "MHz"          // a frequency
	UnitCelsius      = "celsius"      // a temperature
	UnitSeconds      = "seconds"      // a duration
	UnitMilliseconds = "milliseconds" // a duration (latencies)
	UnitUnixTime     = "unixtime"     // a point in time, unix seconds
	UnitBytesTotal   = "bytes_total"  // a byte counter since some start
	UnitCountTotal   = "count_total"  // a counter of things since some start
)

// knownUnits is the vocabulary.
var knownUnits = map[string]bool{
	UnitNone: true, UnitPercent: true, UnitCount: true, UnitBytes: true,
	UnitKiB: true, UnitMiB: true, UnitGiB: true, UnitBytesPerS: true,
	UnitCountPerS: true, UnitMHz: true, UnitCelsius: true, UnitSeconds: true,
	UnitMilliseconds: true, UnitUnixTime: true, UnitBytesTotal: true, UnitCountTotal: true,
}

// Bounds of a batch's "units" object.
const (
	MaxUnitPlugins = 64              // plugins per batch (the daemon's plugins per host)
	MaxUnitKeys    = MaxSampleFields // keys per plugin
	MaxUnitKey     = MaxPathLength   // bytes of a key
	maxUnitName    = 16              // bytes of a unit name (the longest known is 12)
)

// UnitsEvery is how often an agent sends its units to a daemon that takes
// them (and once after it first learns that the daemon does).
const UnitsEvery = 10 * time.Minute

// Units maps plugin names to their declared units (see KnownUnits), as the batch's
// "units" object carries them.
type Units map[string]map[string]string

// ValidUnit reports whether u is in the vocabulary.
func ValidUnit(u string) bool { return knownUnits[u] }

// IsCounter reports whether u is a counter since some start: its rate is
// what to show.
func IsCounter(u string) bool { return strings.HasSuffix(u, "_total") && knownUnits[u] }

// KnownUnits returns the vocabulary, sorted ("" first).
func KnownUnits() []string {
	out := make([]string, 0, len(knownUnits))
	for u := range knownUnits {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// ValidateUnitKey checks a key of a units object: a metric path inside
// the plugin's data (segments joined with ".", each a valid data key) of
// at most MaxUnitKey bytes.
func ValidateUnitKey(k string) error {
	if len(k) > MaxUnitKey {
		return fmt.Errorf("%w: unit key longer than %d bytes", ErrInvalid, MaxUnitKey)
	}
	if k == "" {
		return fmt.Errorf("%w: unit key must not be empty", ErrInvalid)
	}
	for _, seg := range strings.Split(k, ".") {
		if seg == "" {
			return fmt.Errorf("%w: unit key %q has an empty path segment", ErrInvalid, k)
		}
		if err := checkKey(seg); err != nil {
			return fmt.Errorf("%w: unit key %q: %v", ErrInvalid, k, err)
		}
	}
	return nil
}

// ValidatePluginUnits checks one plugin's units as an agent's config
// declares them: at most MaxUnitKeys keys, each valid, every unit known.
func ValidatePluginUnits(units map[string]string) error {
	if len(units) > MaxUnitKeys {
		return fmt.Errorf("%w: more than %d units", ErrInvalid, MaxUnitKeys)
	}
	for k, u := range units {
		if err := ValidateUnitKey(k); err != nil {
			return err
		}
		if !ValidUnit(u) {
			return fmt.Errorf("%w: unit %q of %q is not one of %s", ErrInvalid, u, k, strings.Join(quoted(KnownUnits()), ", "))
		}
	}
	return nil
}

func quoted(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// CleanUnits checks a batch's "units" object as the daemon takes it: the
// plugin names, the bounds and the keys must be valid (an error refuses
// the batch), while an entry whose unit the daemon does not know (a newer
// agent's vocabulary) is left out. It returns the units to keep.
func CleanUnits(u Units) (Units, error) {
	if len(u) > MaxUnitPlugins {
		return nil, fmt.Errorf("%w: units for more than %d plugins", ErrInvalid, MaxUnitPlugins)
	}
	out := make(Units, len(u))
	for plugin, units := range u {
		if err := ValidatePlugin(plugin); err != nil {
			return nil, fmt.Errorf("units: %w", err)
		}
		if len(units) > MaxUnitKeys {
			return nil, fmt.Errorf("%w: units of %s: more than %d keys", ErrInvalid, plugin, MaxUnitKeys)
		}
		keep := make(map[string]string, len(units))
		for k, unit := range units {
			if err := ValidateUnitKey(k); err != nil {
				return nil, fmt.Errorf("units of %s: %w", plugin, err)
			}
			if len(unit) > maxUnitName {
				return nil, fmt.Errorf("%w: units of %s: unit of %q longer than %d bytes", ErrInvalid, plugin, k, maxUnitName)
			}
			if ValidUnit(unit) {
				keep[k] = unit
			}
		}
		out[plugin] = keep
	}
	return out, nil
}

// UnitOf returns the unit units declare for the metric path inside a
// plugin's data: the key equal to the path, else the key equal to its
// last segment. ok is false when neither is declared.
func UnitOf(units map[string]string, path string) (unit string, ok bool) {
	if len(units) == 0 {
		return "", false
	}
	if u, ok := units[path]; ok {
		return u, true
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		u, ok := units[path[i+1:]]
		return u, ok
	}
	return "", false
}
