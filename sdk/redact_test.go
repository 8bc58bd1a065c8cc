package sdk

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

// encodings returns every form a secret must not appear in.
func encodings(secret string) map[string]string {
	return map[string]string{
		"raw":            secret,
		"query":          url.QueryEscape(secret),
		"path":           url.PathEscape(secret),
		"form":           url.Values{"token": {secret}}.Encode(),
		"base64 std":     base64.StdEncoding.EncodeToString([]byte(secret)),
		"base64 url":     base64.URLEncoding.EncodeToString([]byte(secret)),
		"base64 raw std": base64.RawStdEncoding.EncodeToString([]byte(secret)),
		"base64 raw url": base64.RawURLEncoding.EncodeToString([]byte(secret)),
	}
}

// leaks returns the names of the forms of secret found in s.
func leaks(s, secret string) []string {
	var out []string
	for name, form := range encodings(secret) {
		if name == "form" {
			form = strings.TrimPrefix(form, "token=")
		}
		if strings.Contains(s, form) {
			out = append(out, name)
		}
	}
	return out
}

func TestRedactEncodedForms(t *testing.T) {
	// The secret of the attack report: every special character of URLs.
	const secret = "tok/with+special chars&x=1"
	for name, form := range encodings(secret) {
		t.Run(name, func(t *testing.T) {
			msg := "HTTP 400 Bad Request: bad token " + form + " (echoed)"
			got := Redact(msg, []string{secret})
			if l := leaks(got, secret); len(l) > 0 {
				t.Fatalf("Redact(%q) = %q still holds the %v form", msg, got, l)
			}
			if !strings.Contains(got, Redacted) || !strings.HasPrefix(got, "HTTP 400 Bad Request: bad token ") || !strings.HasSuffix(got, " (echoed)") {
				t.Fatalf("Redact(%q) = %q, want the secret alone replaced", msg, got)
			}
		})
	}
}

func TestRedactEchoedFormAndLowerCaseEscapes(t *testing.T) {
	const token, user = "tok/with+special chars&x=1", "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"
	form := url.Values{"token": {token}, "user": {user}, "title": {"web01 is DOWN"}}.Encode()
	got := Redact("HTTP 400: "+form, []string{token, user})
	if len(leaks(got, token)) > 0 || len(leaks(got, user)) > 0 {
		t.Fatalf("echoed form not redacted: %q", got)
	}
	if !strings.Contains(got, "title=web01+is+DOWN") {
		t.Errorf("the form's other fields should stay: %q", got)
	}
	lower := strings.ToLower(url.QueryEscape(token)) // %2f instead of %2F
	if got := Redact("echo "+lower+" end", []string{token}); strings.Contains(got, lower) {
		t.Errorf("lower-case escapes not redacted: %q", got)
	}
}

func TestRedactBase64Embedded(t *testing.T) {
	const user, pass = "mailer", "Smtp-Pa55word!"
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	msg := "smtp 127.0.0.1:2525: SMTP AUTH failed: 535 5.7.8 authentication failed for " + plain
	got := Redact(msg, []string{pass})
	if strings.Contains(got, plain) || !strings.HasSuffix(got, "failed for "+Redacted) {
		t.Fatalf("AUTH PLAIN blob not redacted: %q", got)
	}
	basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	if got := Redact("Authorization: Basic "+basic, []string{pass}); strings.Contains(got, basic) {
		t.Fatalf("Basic credentials not redacted: %q", got)
	}
	// A short secret inside an AUTH PLAIN blob, where NUL bounds it.
	short := base64.StdEncoding.EncodeToString([]byte("\x00u\x00pw1"))
	if got := Redact("535 "+short, []string{"pw1"}); strings.Contains(got, short) {
		t.Fatalf("short secret in AUTH PLAIN not redacted: %q", got)
	}
}

func TestRedactShortSecretsOnlyAsWholeTokens(t *testing.T) {
	tests := []struct {
		secret, in, want string
	}{
		// The attack report's garbled message, secret "t".
		{"t", "priority: must be an integer", "priority: must be an integer"},
		{"int", "priority: must be an integer", "priority: must be an integer"},
		{"t", "token t rejected", "token " + Redacted + " rejected"},
		{"1234", "code 1234, pin 12345", "code " + Redacted + ", pin 12345"},
		{"abc", `{"b":"abc","c":"abcdef"}`, `{"b":"` + Redacted + `","c":"abcdef"}`},
		// Long secrets go wherever they are, with the word they sit in.
		{"abcdefgh12", "Bearerabcdefgh12 and xabcdefgh12y end", Redacted + " and " + Redacted + " end"},
		{"abcdefgh12", "/hooks/abcdefgh12/x", "/hooks/" + Redacted + "/x"},
		// Blank secrets are ignored.
		{"   ", "a   b", "a   b"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in, []string{tt.secret}); got != tt.want {
			t.Errorf("Redact(%q, %q) = %q, want %q", tt.in, tt.secret, got, tt.want)
		}
	}
}

func TestRedactLongestFirst(t *testing.T) {
	got := Redact("key=abcd1234 other=abcd", []string{"abcd", "abcd1234"})
	if got != "key="+Redacted+" other="+Redacted {
		t.Fatalf("Redact = %q", got)
	}
}

func TestRedactorLogsEncodedForms(t *testing.T) {
	var out bytes.Buffer
	r := newRedactor(&out)
	log := newPluginLogger("t", r)
	const secret = "tok/with+special chars&x=1"
	release := r.track([]string{secret})
	log.Warn("receiver answered", "body", url.Values{"token": {secret}}.Encode(),
		"auth", base64.StdEncoding.EncodeToString([]byte("\x00u\x00"+secret)))
	release()
	if l := leaks(out.String(), secret); len(l) > 0 {
		t.Fatalf("log line holds the %v form: %s", l, out.String())
	}
}
