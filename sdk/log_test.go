package sdk

import (
	"bytes"
	"strings"
	"testing"
)

func TestRedactorRemovesTrackedSecretsOnly(t *testing.T) {
	var out bytes.Buffer
	r := newRedactor(&out)
	log := newPluginLogger("t", r)

	release := r.track([]string{"s3cr3t<&>\"quoted\"", "abc", "longsecret", "longsecret-plus"})
	log.Info("values", "a", "s3cr3t<&>\"quoted\"", "b", "abc", "c", "longsecret-plus and longsecret")
	release()
	log.Info("after", "a", "longsecret")

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines: %q", len(lines), out.String())
	}
	if strings.Contains(lines[0], "s3cr3t") || strings.Contains(lines[0], "longsecret") || strings.Contains(lines[0], "-plus") {
		t.Errorf("secret left in %s", lines[0])
	}
	if strings.Contains(lines[0], `"b":"abc"`) {
		t.Errorf("a short secret standing as a whole token should go: %s", lines[0])
	}
	if !strings.Contains(lines[1], "longsecret") {
		t.Errorf("released secret still redacted: %s", lines[1])
	}
}
