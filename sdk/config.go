package sdk

import (
	"maps"
	"strings"
)

// Config is one channel's configuration as the daemon sends it: field key
// to value, every value a string (number and bool fields hold their text
// form). A notifier does not read it: it receives the checked [Settings]
// made from it.
type Config map[string]string

// WithDefaults returns a copy of c in which every field of s that c leaves
// empty holds the field's Default.
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
