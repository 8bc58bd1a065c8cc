package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// decodeErrRE splits a decoder message "'key' problem" into its key (in
// the decoder's form, map keys in brackets) and its problem.
var decodeErrRE = regexp.MustCompile(`^'([^']*)' (.*)$`)

// decodeProblem turns the decoder's first error into a key and a message
// that names the offending value: `"3x" is not a duration (use 30s, 5m,
// 1h or 30d)` rather than library text with stray quotes.
func decodeProblem(err error, raw map[string]any) (key, msg string) {
	text := strings.TrimPrefix(err.Error(), "decoding failed due to the following error(s):\n\n")
	if i := strings.Index(text, "\n"); i > 0 {
		text = text[:i]
	}
	m := decodeErrRE.FindStringSubmatch(text)
	if m == nil {
		return "", strings.Trim(dotted(text), "'")
	}
	segs := keySegments(m[1])
	key, problem := strings.Join(segs, "."), m[2]
	val, found := lookup(raw, segs)
	shown := fmt.Sprint(val)
	if s, ok := val.(string); ok {
		shown = strconv.Quote(s)
	}
	switch {
	case !found:
	case strings.Contains(problem, "invalid duration"):
		return key, shown + " is not a duration (use 30s, 5m, 1h or 30d)"
	case strings.Contains(problem, "as 'float"):
		return key, shown + " is not a number"
	case strings.Contains(problem, "as 'int") || strings.Contains(problem, "as 'uint"):
		return key, shown + " is not a whole number"
	case strings.Contains(problem, "as 'bool"):
		return key, shown + " is not true or false"
	case strings.Contains(problem, "expected a map"), strings.Contains(problem, "expected type 'map"):
		return key, "must be a mapping of keys to values, got " + shown
	case strings.Contains(problem, "source data must be an array or slice"):
		return key, "must be a list, got " + shown
	}
	return key, problem
}

// keySegments splits "watchhosts[web01].thresholds[cpu.*].warning" into
// its segments; bracketed map keys keep their dots.
func keySegments(k string) []string {
	var segs []string
	var cur strings.Builder
	depth := 0
	for _, r := range k {
		switch {
		case r == '[' && depth == 0:
			if cur.Len() > 0 {
				segs = append(segs, cur.String())
				cur.Reset()
			}
			depth++
		case r == ']' && depth == 1:
			segs = append(segs, cur.String())
			cur.Reset()
			depth--
		case (r == '.' || r == rune(delim[0])) && depth == 0:
			if cur.Len() > 0 {
				segs = append(segs, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		segs = append(segs, cur.String())
	}
	return segs
}

// lookup walks the raw decoded config along segs.
func lookup(raw map[string]any, segs []string) (any, bool) {
	var cur any = raw
	for _, s := range segs {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[s]; !ok {
			return nil, false
		}
	}
	return cur, true
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// yamlHint adds what usually causes a YAML syntax error on its line: a
// tab in the indentation, or an unquoted glob starting with "*" (an alias
// in YAML).
func yamlHint(raw []byte, msg string) string {
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	n, _ := strconv.Atoi(m[1])
	lines := strings.Split(string(raw), "\n")
	for _, i := range []int{n - 1, n - 2} { // the line named, and the one before
		if i < 0 || i >= len(lines) {
			continue
		}
		line := lines[i]
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		switch {
		case strings.Contains(indent, "\t"):
			return fmt.Sprintf(" (line %d is indented with a tab: YAML needs spaces)", i+1)
		case strings.HasPrefix(strings.TrimSpace(line), "*") || strings.Contains(line, ": *") || strings.Contains(line, "[*"):
			return fmt.Sprintf(` (line %d: quote globs that start with "*", e.g. "*.percent")`, i+1)
		}
	}
	return ""
}
