package config

import (
	"strings"
	"testing"
)

// Bad durations and numbers leaked library text with a stray quote
// ("timeout' invalid duration", "strconv.ParseFloat"); a tab or an
// unquoted "*" glob gave a raw YAML error (issue 14). Each names the file,
// the key and the value now, or adds a hint.
func TestValueErrorsNameTheKeyAndTheValue(t *testing.T) {
	const key = `key: "0123456789abcdef0123456789abcdef"`
	cases := map[string]string{
		"watchhosts:\n  web01: {" + key + ", timeout: 3x}\n":       `hbd.yaml: watchhosts.web01.timeout: "3x" is not a duration (use 30s, 5m, 1h or 30d)`,
		"thresholds:\n  cpu_monitor.cpu_percent: {warning: abc}\n": `hbd.yaml: thresholds.cpu_monitor.cpu_percent.warning: "abc" is not a number`,
		"hbd_port: fifty\n":                                     `hbd.yaml: hbd_port: "fifty" is not a whole number`,
		"log_json: maybe\n":                                     `hbd.yaml: log_json: "maybe" is not true or false`,
		"watchhosts:\n\tweb01: {}\n":                            "line 2 is indented with a tab: YAML needs spaces",
		"thresholds:\n  *.percent: {warning: 1}\n":              `quote globs that start with "*"`,
		"thresholds:\n  cpu_monitor.cpu_percent: {for: 1.5x}\n": `hbd.yaml: thresholds.cpu_monitor.cpu_percent.for: "1.5x" is not a whole number`,
	}
	for yaml, want := range cases {
		_, err := Parse("hbd.yaml", []byte(yaml), []string{})
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "strconv") || strings.Contains(err.Error(), "' ") {
			t.Errorf("%q:\n got  %v\n want %s", yaml, err, want)
		}
	}
}
