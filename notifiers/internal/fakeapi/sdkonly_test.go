package fakeapi

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNotifiersImportOnlyTheSDK keeps the built-in notifiers what
// docs/PLUGINS.md says they are: worked examples that build against the
// sdk module alone, as a third-party notifier would.
func TestNotifiersImportOnlyTheSDK(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not installed")
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./notifiers/...")
	cmd.Dir = "../../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	seen := 0
	for _, pkg := range strings.Fields(string(out)) {
		if !strings.HasPrefix(pkg, "github.com/hbdmon/hbd/") {
			continue
		}
		seen++
		if !strings.HasPrefix(pkg, "github.com/hbdmon/hbd/sdk") && !strings.HasPrefix(pkg, "github.com/hbdmon/hbd/notifiers/") {
			t.Errorf("a notifier depends on %s; notifiers may import only the sdk", pkg)
		}
	}
	if seen < 12 {
		t.Fatalf("go list found only %d hbd packages:\n%s", seen, out)
	}
}
