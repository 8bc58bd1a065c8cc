package fakeapi

import (
	"testing"
	"time"

	"github.com/hbdmon/hbd/sdk"
)

// checkRetryAfter checks that err asks for a retry after want (when set).
func checkRetryAfter(t *testing.T, err error, want time.Duration) {
	t.Helper()
	if want == 0 {
		return
	}
	if got, ok := sdk.RetryAfterOf(err); !ok || got != want {
		t.Errorf("Notify = %v: retry after %v (%v), want %v", err, got, ok, want)
	}
}
