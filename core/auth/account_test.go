package auth

import (
	"strings"
	"testing"
)

func TestTokensAreRandomAndWellFormed(t *testing.T) {
	a, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newToken()
	if a == b || !wellFormed(a) || len(a) != 43 {
		t.Fatalf("tokens %q %q", a, b)
	}
	for _, bad := range []string{"", a[:42], a + "A", strings.Repeat("+", 43), strings.Repeat("=", 43)} {
		if wellFormed(bad) {
			t.Errorf("wellFormed(%q)", bad)
		}
	}
	if len(hashToken(a)) != 64 || hashToken(a) == hashToken(b) || CSRFToken(a) == hashToken(a) {
		t.Fatal("hashes")
	}
}

func TestEmailAndDisplayNameChecks(t *testing.T) {
	for v, ok := range map[string]bool{
		"alice@example.com":                true,
		" alice@example.com ":              true,
		"":                                 true,
		"alice":                            false,
		"alice@":                           false,
		"@example.com":                     false,
		"Alice <alice@example.com>":        false,
		"alice@example.com, b@c.d":         false,
		"al ice@example.com":               false,
		"alice@example.com\n":              true, // trimmed
		"a\x00@example.com":                false,
		strings.Repeat("a", 250) + "@x.io": false,
	} {
		if _, err := checkEmail(v); (err == nil) != ok {
			t.Errorf("checkEmail(%q) error %v, want ok=%v", v, err, ok)
		}
	}
	if v, err := checkDisplayName("  Zoë Ops  "); err != nil || v != "Zoë Ops" {
		t.Errorf("display name %q %v", v, err)
	}
	if _, err := checkDisplayName("a\u202eb\x1b"); err == nil {
		t.Error("control characters accepted")
	}
}
