package sdk

import (
	"strconv"
	"strings"
)

// Settings is one channel's configuration as a [Notifier] receives it: the
// SDK has filled every field the channel leaves empty with its schema
// Default and checked the values with [Schema.Validate] (required fields are
// set, number fields hold numbers, bool fields booleans) before it calls
// Validate or Notify. A notifier reads typed values from it and checks only
// what the schema cannot express (URL shapes, ranges, allowed values).
//
// The zero Settings reads as empty. A Settings is read-only and safe for
// concurrent use.
type Settings struct {
	values Config
}

// NewSettings applies s's defaults to cfg and checks the result with
// [Schema.Validate], returning its [*FieldError] when a value is missing
// or malformed. The SDK calls it for every Validate and Notify it serves;
// tests that call a notifier directly use it, or sdktest's Validate and
// Notify, to pass what the daemon's call would.
func NewSettings(s Schema, cfg Config) (Settings, error) {
	return newSettings(s, cfg.WithDefaults(s))
}

// newSettings is NewSettings for a cfg that already holds its defaults.
func newSettings(s Schema, cfg Config) (Settings, error) {
	if err := s.Validate(cfg); err != nil {
		return Settings{}, err
	}
	return Settings{values: cfg}, nil
}

// String returns the value for key with surrounding white space removed,
// or "" when the key is empty or absent.
func (s Settings) String(key string) string { return strings.TrimSpace(s.values[key]) }

// Raw returns the value for key exactly as configured, white space
// included: for secrets such as passwords, where it may be part of the
// value.
func (s Settings) Raw(key string) string { return s.values[key] }

// Int returns the value for key as an integer; ok is false when the value
// is empty or not a whole number (a number field may hold "2.5").
func (s Settings) Int(key string) (n int, ok bool) {
	n, err := strconv.Atoi(s.String(key))
	return n, err == nil
}

// Bool returns the value for key as a boolean (anything strconv.ParseBool
// accepts); false when it is empty.
func (s Settings) Bool(key string) bool {
	b, _ := strconv.ParseBool(s.String(key))
	return b
}

// List splits the value for key on commas and newlines and returns the
// non-empty, trimmed items; nil when there are none.
func (s Settings) List(key string) []string {
	var out []string
	for _, item := range strings.FieldsFunc(s.values[key], func(r rune) bool { return r == ',' || r == '\n' }) {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
