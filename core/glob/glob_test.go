package glob

import "testing"

func TestMatch(t *testing.T) {
	cases := []struct {
		pat, s string
		want   bool
	}{
		{"cpu_monitor.cpu_percent", "cpu_monitor.cpu_percent", true},
		{"cpu_monitor.cpu_percent", "cpu_monitor.cpu_percent2", false},
		{"disk_monitor.*.percent", "disk_monitor./.percent", true},
		{"disk_monitor.*.percent", "disk_monitor./home.percent", true},
		{"disk_monitor.*.percent", "disk_monitor.io.sda.percent", false},
		{"disk_monitor.**.percent", "disk_monitor.io.sda.percent", true},
		{"cpu_monitor.**", "cpu_monitor.load_1min", true},
		{"cpu_monitor.load_?min", "cpu_monitor.load_5min", true},
		{"cpu_monitor.load_?min", "cpu_monitor.load_15min", false},
		{"web*", "web01", true},
		{"web*", "db01", false},
		{"*", "a.b", false},
		{"**", "a.b", true},
	}
	for _, c := range cases {
		t.Run(c.pat+"~"+c.s, func(t *testing.T) {
			if got := MustCompile(c.pat).Match(c.s); got != c.want {
				t.Fatalf("Match(%q, %q) = %v, want %v", c.pat, c.s, got, c.want)
			}
		})
	}
}

func TestCompileRejects(t *testing.T) {
	for _, p := range []string{"", "a.***"} {
		if _, err := Compile(p); err == nil {
			t.Errorf("Compile(%q) succeeded, want error", p)
		}
	}
}

func TestLiteralRanksSpecificity(t *testing.T) {
	exact := MustCompile("disk_monitor./.percent")
	wild := MustCompile("disk_monitor.*.percent")
	if exact.Literal() <= wild.Literal() {
		t.Fatalf("exact %d should outrank wildcard %d", exact.Literal(), wild.Literal())
	}
	if !exact.IsLiteral() || wild.IsLiteral() {
		t.Fatal("IsLiteral wrong")
	}
}
