// Package glob matches dotted metric paths and host names against the
// patterns operators write in thresholds, channel host filters and silences.
//
// Syntax: "*" matches any run of characters except "." (one path segment or
// part of one), "**" matches any run of characters including ".", "?" matches
// one character other than ".", and everything else matches itself. So
// "disk_monitor.*.percent" matches "disk_monitor./.percent" and
// "disk_monitor./home.percent", and "cpu_monitor.**" matches every cpu metric.
package glob

import (
	"errors"
	"fmt"
	"strings"
)

// ErrEmpty is returned by Compile for an empty pattern.
var ErrEmpty = errors.New("empty pattern")

// Pattern is a compiled glob. The zero value matches nothing.
type Pattern struct {
	src   string
	parts []part
	// literal counts the non-wildcard bytes; more literal bytes means a more
	// specific pattern when several match the same path.
	literal int
}

type kind uint8

const (
	lit kind = iota
	star
	globstar
	one
)

type part struct {
	k kind
	s string
}

// Compile parses a pattern. It fails on an empty pattern or "***".
func Compile(p string) (Pattern, error) {
	if p == "" {
		return Pattern{}, ErrEmpty
	}
	if strings.Contains(p, "***") {
		return Pattern{}, fmt.Errorf("pattern %q: \"***\" is not allowed", p)
	}
	pat := Pattern{src: p}
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			pat.parts = append(pat.parts, part{k: lit, s: b.String()})
			pat.literal += b.Len()
			b.Reset()
		}
	}
	for i := 0; i < len(p); i++ {
		switch {
		case p[i] == '*' && i+1 < len(p) && p[i+1] == '*':
			flush()
			pat.parts = append(pat.parts, part{k: globstar})
			i++
		case p[i] == '*':
			flush()
			pat.parts = append(pat.parts, part{k: star})
		case p[i] == '?':
			flush()
			pat.parts = append(pat.parts, part{k: one})
		default:
			b.WriteByte(p[i])
		}
	}
	flush()
	return pat, nil
}

// MustCompile is Compile for patterns known to be valid; it panics otherwise.
func MustCompile(p string) Pattern {
	pat, err := Compile(p)
	if err != nil {
		panic(err)
	}
	return pat
}

// String returns the source pattern.
func (p Pattern) String() string { return p.src }

// Literal returns how many bytes of the pattern are not wildcards. Callers
// choosing among several matching patterns prefer the larger value.
func (p Pattern) Literal() int { return p.literal }

// IsLiteral reports whether the pattern has no wildcards.
func (p Pattern) IsLiteral() bool { return len(p.parts) == 1 && p.parts[0].k == lit }

// Match reports whether s matches the whole pattern.
func (p Pattern) Match(s string) bool {
	if p.src == "" {
		return false
	}
	return match(p.parts, s)
}

func match(parts []part, s string) bool {
	for len(parts) > 0 {
		pt := parts[0]
		switch pt.k {
		case lit:
			if !strings.HasPrefix(s, pt.s) {
				return false
			}
			s = s[len(pt.s):]
		case one:
			if s == "" || s[0] == '.' {
				return false
			}
			s = s[1:]
		case star, globstar:
			for i := 0; i <= len(s); i++ {
				if match(parts[1:], s[i:]) {
					return true
				}
				if i < len(s) && s[i] == '.' && pt.k == star {
					return false
				}
			}
			return false
		}
		parts = parts[1:]
	}
	return s == ""
}
