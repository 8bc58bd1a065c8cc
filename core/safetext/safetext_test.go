package safetext

import "testing"

func TestUnsafeCharacters(t *testing.T) {
	for _, s := range []string{"a\x00b", "\x1b[31mred", "next\u0085line", "gpj\u202Eexe", "a\u2066b", "x\x7f", "bad\xffutf8"} {
		if Valid(s) {
			t.Errorf("%q accepted", s)
		}
		if c := Clean(s); !Valid(c) {
			t.Errorf("Clean(%q) = %q is still unsafe", s, c)
		}
	}
	for _, s := range []string{"", "web01", "Zoë Ångström", "日本語", "👩‍💻 dev", "disk_monitor./.percent"} {
		if !Valid(s) {
			t.Errorf("%q refused", s)
		}
		if Clean(s) != s {
			t.Errorf("Clean changed %q", s)
		}
	}
	if got := Clean("ok\x1b[31m"); got != "ok\uFFFD[31m" {
		t.Errorf("Clean = %q", got)
	}
}
