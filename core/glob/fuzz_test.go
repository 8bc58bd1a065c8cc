package glob

import (
	"path"
	"testing"
)

// FuzzCompile: any pattern either compiles or is refused with an error;
// matching never panics, and a literal pattern matches itself.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{"*", "web*", "cpu_monitor.*", "disk_monitor./.percent", "**", "[a-z]*", "a?b", "\\*", "", "a[", "{a,b}"} {
		f.Add(s, "web01")
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		p, err := Compile(pattern)
		if err != nil {
			return
		}
		p.Match(name)
		p.Match(pattern)
		if p.String() != pattern {
			t.Fatalf("String() = %q, want %q", p.String(), pattern)
		}
		if _, err := path.Match(pattern, pattern); err == nil && p.Literal() == len(pattern) && !p.Match(pattern) {
			t.Fatalf("literal pattern %q does not match itself", pattern)
		}
	})
}
