package sdk

import (
	"maps"
	"strconv"
	"strings"
)

// Config is one channel's configuration as the daemon passes it: field key to
// value, every value a string. Number and bool fields hold their text form;
// use the typed getters to read them.
type Config map[string]string

// Get returns the value for key with surrounding white space removed, or ""
// when the key is absent.
func (c Config) Get(key string) string { return strings.TrimSpace(c[key]) }

// Int returns the value for key parsed as an integer, or def when it is
// absent, empty or not an integer. Validate should have rejected the latter.
func (c Config) Int(key string, def int) int {
	n, err := strconv.Atoi(c.Get(key))
	if err != nil {
		return def
	}
	return n
}

// Bool returns the value for key parsed with strconv.ParseBool, or def when
// it is absent, empty or not a boolean.
func (c Config) Bool(key string, def bool) bool {
	b, err := strconv.ParseBool(c.Get(key))
	if err != nil {
		return def
	}
	return b
}

// List splits the value for key on commas and newlines and returns the
// non-empty, trimmed items; nil when there are none.
func (c Config) List(key string) []string {
	var out []string
	for _, item := range strings.FieldsFunc(c[key], func(r rune) bool { return r == ',' || r == '\n' }) {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// WithDefaults returns a copy of c in which every field of s that c leaves
// empty holds the field's Default. The SDK applies it before calling
// Validate and Notify; notifiers tested in-process may call it themselves.
func (c Config) WithDefaults(s Schema) Config {
	out := make(Config, len(c)+len(s.Fields))
	maps.Copy(out, c)
	for _, f := range s.Fields {
		if f.Default != "" && strings.TrimSpace(out[f.Key]) == "" {
			out[f.Key] = f.Default
		}
	}
	return out
}
