package config

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultMemoryLimit is memory_limit's default: the Go runtime's soft
// memory limit, under which it collects garbage more often rather than
// let the heap grow (see docs/PERFORMANCE.md for what it bought).
const DefaultMemoryLimit = "768MiB"

// sizeUnits are the suffixes memory_limit accepts, by their factor.
var sizeUnits = []struct {
	suffix string
	factor int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"b", 1},
}

// ParseSize reads a byte size: a whole number with an optional unit (B,
// KB, MB, GB, TB, KiB, MiB, GiB, TiB, any case), e.g. "768MiB". "0", "off"
// and "none" are 0.
func ParseSize(s string) (int64, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch v {
	case "0", "off", "none":
		return 0, nil
	}
	factor := int64(1)
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			v, factor = strings.TrimSpace(num), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a size such as 768MiB, 1GiB or off, got %q", s)
	}
	if n > (1<<62)/factor {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * factor, nil
}

// MemoryLimitBytes is memory_limit in bytes; 0 when off. The config was
// validated, so it parses.
func (c *Config) MemoryLimitBytes() int64 {
	n, _ := ParseSize(c.MemoryLimit)
	return n
}

// MinMemoryLimit is the smallest memory_limit accepted (other than off):
// below it the collector would run all the time.
const MinMemoryLimit = 64 << 20

func (c *Config) validateMemoryLimit() error {
	n, err := ParseSize(c.MemoryLimit)
	if err != nil {
		return &Error{Key: "memory_limit", Msg: err.Error()}
	}
	if n != 0 && n < MinMemoryLimit {
		return &Error{Key: "memory_limit", Msg: fmt.Sprintf("must be off or at least 64MiB, got %q", c.MemoryLimit)}
	}
	return nil
}
