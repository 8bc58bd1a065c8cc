package protocol

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClipAgentErrorIsBoundedAndSafe(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	got := ClipAgentError("probe: \x1b[31m" + long)
	if len(got) > MaxAgentErrorLength || !utf8.ValidString(got) || strings.ContainsRune(got, 0x1b) {
		t.Fatalf("ClipAgentError = %q (%d bytes): want at most %d bytes of valid text without control characters", got, len(got), MaxAgentErrorLength)
	}
	if !strings.HasPrefix(got, "probe: \uFFFD[31mé") {
		t.Fatalf("ClipAgentError = %q: want the start kept, the escape replaced", got)
	}
	if got := ClipAgentError("short"); got != "short" {
		t.Fatalf("ClipAgentError(short) = %q", got)
	}
}
