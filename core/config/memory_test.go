package config

import (
	"strings"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		body string
		want int64
		err  string
	}{
		{"", 768 << 20, ""},
		{"memory_limit: 1GiB\n", 1 << 30, ""},
		{"memory_limit: 512 mib\n", 512 << 20, ""},
		{"memory_limit: 2GB\n", 2e9, ""},
		{"memory_limit: 100000000\n", 100000000, ""},
		{"memory_limit: off\n", 0, ""},
		{"memory_limit: 0\n", 0, ""},
		{"memory_limit: lots\n", 0, "memory_limit: want a size such as 768MiB"},
		{"memory_limit: -5MiB\n", 0, "memory_limit: want a size"},
		{"memory_limit: 1MiB\n", 0, "memory_limit: must be off or at least 64MiB"},
		{"memory_limit: 99999999999TiB\n", 0, "memory_limit: \"99999999999TiB\" is too large"},
	} {
		p := write(t, tc.body)
		cfg, err := Load(p, []string{})
		if tc.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), p+": ") || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one naming the file and %q", tc.body, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.body, err)
			continue
		}
		if got := cfg.MemoryLimitBytes(); got != tc.want {
			t.Errorf("%q: %d bytes, want %d", tc.body, got, tc.want)
		}
	}
}
