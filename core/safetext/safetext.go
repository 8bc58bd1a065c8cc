// Package safetext decides which characters of outside text (metric keys,
// display names, silence comments, remote answers) may be stored and shown:
// no control characters (C0, DEL, C1) and no bidirectional overrides,
// which can make a journal line or a page read differently from what it
// holds (U+202E turns "gpj.exe" into "exe.jpg").
package safetext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Unsafe reports whether r must not appear in stored or shown text: a
// control character (C0, DEL, C1 such as U+0085) or a bidirectional
// formatting character (U+061C, U+200E, U+200F, U+202A–U+202E,
// U+2066–U+2069).
func Unsafe(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r == 0x061C, r == 0x200E, r == 0x200F:
		return true
	case r >= 0x202A && r <= 0x202E:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// Valid reports whether s is valid UTF-8 without unsafe characters.
func Valid(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, Unsafe) < 0
}

// Clean returns s with invalid UTF-8 and unsafe characters replaced by
// U+FFFD, so what was there stays visible without acting.
func Clean(s string) string {
	if Valid(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if Unsafe(r) {
			return utf8.RuneError
		}
		return r
	}, s)
}
