package sdk

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Redacted replaces secret values in errors and logs, like masked fields in
// the API.
const Redacted = "•••"

// ShortSecretLen is the length in bytes below which a secret is redacted
// only where it stands as a whole token: not preceded or followed by a
// letter, digit or underscore. A short secret ("t", "1234") is thus never
// cut out of a word ("priority" stays whole) and the text does not reveal
// which characters it holds. A secret of ShortSecretLen bytes or more is
// redacted wherever it appears, together with the rest of the word it
// sits in.
const ShortSecretLen = 8

// minDecodeToken is the shortest base64 token that is decoded to look for
// a secret inside it (AUTH PLAIN blobs, Basic credentials).
const minDecodeToken = 8

// Redact returns s with every secret in secrets removed, in each form a
// secret travels in: raw, inside a JSON string, URL-encoded (query and
// form encoding, where a space is '+', and path encoding), base64 (std,
// URL, padded or raw), and inside a longer base64 or percent-encoded token
// that decodes to text holding it (an SMTP AUTH PLAIN blob, a whole echoed
// form). Each match is replaced by [Redacted] as a whole token: a secret of
// at least [ShortSecretLen] bytes takes the word it sits in with it, a
// shorter one is replaced only where it is a whole token itself. Empty and
// blank secrets are ignored.
//
// The SDK applies Redact to every error a plugin returns and every line it
// logs, with the secret fields of the call's configuration; the daemon
// applies it again on its side.
func Redact(s string, secrets []string) string {
	return newRedaction(secrets).apply(s)
}

// pattern is one form of one secret.
type pattern struct {
	text  string
	short bool
}

// redaction finds the secrets of one set in text.
type redaction struct {
	forms []pattern // every form, longest first
	raw   []pattern // the secrets themselves, for decoded tokens
}

func newRedaction(secrets []string) *redaction {
	r := &redaction{}
	seenRaw := map[string]bool{}
	seenForm := map[string]bool{}
	for _, s := range secrets {
		// The raw value and the trimmed one notifiers read with Config.Get.
		for _, v := range []string{s, strings.TrimSpace(s)} {
			if strings.TrimSpace(v) == "" || seenRaw[v] {
				continue
			}
			seenRaw[v] = true
			short := len(v) < ShortSecretLen
			r.raw = append(r.raw, pattern{text: v, short: short})
			for _, f := range secretForms(v) {
				if !seenForm[f] {
					seenForm[f] = true
					r.forms = append(r.forms, pattern{text: f, short: short})
				}
			}
		}
	}
	slices.SortStableFunc(r.forms, func(a, b pattern) int { return len(b.text) - len(a.text) })
	return r
}

// secretForms returns s as it appears raw, inside JSON strings, URL-encoded
// and base64-encoded, without duplicates.
func secretForms(s string) []string {
	out := []string{s}
	add := func(f string) {
		if f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	for _, escapeHTML := range []bool{true, false} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(escapeHTML)
		if err := enc.Encode(s); err == nil {
			q := strings.TrimSpace(buf.String())
			add(q[1 : len(q)-1])
		}
	}
	add(url.QueryEscape(s))
	add(url.PathEscape(s))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		add(enc.EncodeToString([]byte(s)))
	}
	return out
}

// span is a byte range of the text to replace.
type span struct{ from, to int }

func (r *redaction) apply(s string) string {
	if len(r.forms) == 0 || s == "" {
		return s
	}
	var spans []span
	for _, p := range r.forms {
		spans = appendMatches(spans, s, p)
	}
	spans = append(spans, r.decoded(s)...)
	if len(spans) == 0 {
		return s
	}
	slices.SortFunc(spans, func(a, b span) int { return a.from - b.from })
	var out strings.Builder
	last := 0
	for i := 0; i < len(spans); {
		cur := spans[i]
		for i++; i < len(spans) && spans[i].from <= cur.to; i++ {
			cur.to = max(cur.to, spans[i].to)
		}
		if cur.from < last {
			cur.from = last
		}
		out.WriteString(s[last:cur.from])
		out.WriteString(Redacted)
		last = cur.to
	}
	out.WriteString(s[last:])
	return out.String()
}

// appendMatches adds the spans of p in s: for a short pattern its whole-token
// occurrences, for a long one every occurrence widened to its word.
func appendMatches(spans []span, s string, p pattern) []span {
	for off := 0; off <= len(s)-len(p.text); {
		i := strings.Index(s[off:], p.text)
		if i < 0 {
			break
		}
		from, to := off+i, off+i+len(p.text)
		off = from + 1
		if p.short {
			if wordBefore(s, from) || wordAfter(s, to) {
				continue
			}
		} else {
			for wordBefore(s, from) {
				_, n := utf8.DecodeLastRuneInString(s[:from])
				from -= n
			}
			for wordAfter(s, to) {
				_, n := utf8.DecodeRuneInString(s[to:])
				to += n
			}
		}
		spans = append(spans, span{from, to})
		off = to
	}
	return spans
}

func isWord(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

func wordBefore(s string, i int) bool {
	if i <= 0 {
		return false
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return isWord(r)
}

func wordAfter(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return isWord(r)
}

// holds reports whether decoded text t holds one of the raw secrets under
// the same rules as the text itself (NUL separates tokens, as in SASL
// PLAIN).
func (r *redaction) holds(t string) bool {
	for _, p := range r.raw {
		if m := appendMatches(nil, t, p); len(m) > 0 {
			return true
		}
	}
	return false
}

// decoded returns the spans of base64 and percent-encoded tokens of s that
// decode to text holding a secret.
func (r *redaction) decoded(s string) []span {
	var spans []span
	// base64 tokens: runs of the base64 alphabets (std and URL) and '='.
	eachRun(s, isBase64Char, func(from, to int) {
		tok := s[from:to]
		if to-from < minDecodeToken {
			return
		}
		for _, t := range base64Decodings(tok) {
			if r.holds(t) {
				spans = append(spans, span{from, to})
				return
			}
		}
	})
	// percent-encoded tokens: delimited by white space, quotes and the
	// separators of query strings and forms.
	eachRun(s, isURLTokenChar, func(from, to int) {
		tok := s[from:to]
		if !strings.ContainsAny(tok, "%+") {
			return
		}
		for _, plus := range []bool{true, false} {
			if t, ok := percentDecode(tok, plus); ok && t != tok && r.holds(t) {
				spans = append(spans, span{from, to})
				return
			}
		}
	})
	return spans
}

// eachRun calls fn with the bounds of every maximal run of bytes of s
// accepted by in.
func eachRun(s string, in func(byte) bool, fn func(from, to int)) {
	for i := 0; i < len(s); {
		if !in(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && in(s[j]) {
			j++
		}
		fn(i, j)
		i = j
	}
}

func isBase64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '+' || c == '/' || c == '-' || c == '_' || c == '='
}

func isURLTokenChar(c byte) bool {
	return c > ' ' && c < 0x7f && !strings.ContainsRune(`"'<>&=;,?#()[]{}`, rune(c))
}

// base64Decodings returns the printable texts tok decodes to under each
// base64 alphabet, padded or not.
func base64Decodings(tok string) []string {
	var out []string
	trimmed := strings.TrimRight(tok, "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(trimmed)
		if err != nil || len(b) == 0 || !printable(b) {
			continue
		}
		if t := string(b); !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// printable reports whether b is UTF-8 text of printable characters, white
// space and NUL (the SASL separator): random words that happen to decode
// as base64 almost never are.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r != 0 && !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// percentDecode decodes %XX escapes (either case) and, with plus, '+' as a
// space; ok is false when nothing was decoded.
func percentDecode(tok string, plus bool) (string, bool) {
	var b strings.Builder
	changed := false
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c == '%' && i+2 < len(tok) && isHex(tok[i+1]) && isHex(tok[i+2]):
			b.WriteByte(unhex(tok[i+1])<<4 | unhex(tok[i+2]))
			i += 2
			changed = true
		case c == '+' && plus:
			b.WriteByte(' ')
			changed = true
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), changed
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
