package collect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// script writes an executable shell script into a temp dir.
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plugin.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExecPluginOutput(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		timeout time.Duration
		want    map[string]any // nil means an error is expected
		errLike string
	}{
		{name: "flat object", body: `echo '{"queue_depth": 12, "ratio": 0.5}'`,
			want: map[string]any{"queue_depth": 12.0, "ratio": 0.5}},
		{name: "nested object", body: `printf '{"db": {"conns": 3}}'`,
			want: map[string]any{"db": map[string]any{"conns": 3.0}}},
		{name: "not JSON", body: `echo hello`, errLike: "not JSON"},
		{name: "no output", body: `true`, errLike: "no output"},
		{name: "array", body: `echo '[1,2]'`, errLike: "array"},
		{name: "bare number", body: `echo 42`, errLike: "a number"},
		{name: "string leaf", body: `echo '{"status": "ok"}'`, errLike: "must be a number"},
		{name: "bool leaf", body: `echo '{"up": true}'`, errLike: "must be a number"},
		{name: "null leaf", body: `echo '{"x": null}'`, errLike: "must be a number"},
		{name: "empty object", body: `echo '{}'`, errLike: "non-empty"},
		{name: "trailing garbage", body: `echo '{"a": 1} x'`, errLike: "not JSON"},
		{name: "non-zero exit", body: `echo '{"a": 1}'; echo broken >&2; exit 3`, errLike: "exit status 3"},
		{name: "output too large", body: `head -c 70000 /dev/zero | tr '\0' ' '; echo '{"a":1}'`, errLike: "exceeds"},
		{name: "timeout", body: `sleep 5; echo '{"a": 1}'`, timeout: 200 * time.Millisecond, errLike: "timed out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			p := NewExec(ExecSpec{Name: "custom", Command: []string{script(t, tt.body)}, Timeout: timeout})
			// The timeout case proves the command is cut short by its
			// "timed out" error (the script would sleep 5 s); no elapsed
			// time is asserted, which a loaded machine can stretch.
			got, err := p.Collect(t.Context())
			if tt.want == nil {
				if err == nil || !strings.Contains(err.Error(), tt.errLike) {
					t.Fatalf("error %v, want one mentioning %q (data %v)", err, tt.errLike, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Collect: %v", err)
			}
			if !equalData(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestExecTimeoutKillsTheWholeProcessGroup(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "survivor")
	// The child would create the marker after the timeout if it survived.
	body := `(sleep 1; touch ` + marker + `) & sleep 5`
	p := NewExec(ExecSpec{Name: "slow", Command: []string{script(t, body)}, Timeout: 200 * time.Millisecond})
	if _, err := p.Collect(t.Context()); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("want timeout, got %v", err)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a child of the timed-out command kept running")
	}
}

func TestExecRunsArgvWithoutAShell(t *testing.T) {
	// With a shell, $HOME and the semicolon would be interpreted.
	p := NewExec(ExecSpec{Name: "argv", Timeout: 5 * time.Second,
		Command: []string{script(t, `printf '{"args": %d}' "$#"`), "$HOME; echo", "two"}})
	got, err := p.Collect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got["args"] != 2.0 {
		t.Fatalf("got %v", got)
	}
}

func TestExecMissingCommandIsAnError(t *testing.T) {
	p := NewExec(ExecSpec{Name: "missing", Command: []string{"/nonexistent/hbc-plugin"}, Timeout: time.Second})
	if _, err := p.Collect(t.Context()); err == nil {
		t.Fatal("no error for a missing command")
	}
}

func equalData(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		switch x := va.(type) {
		case map[string]any:
			y, ok := b[k].(map[string]any)
			if !ok || !equalData(x, y) {
				return false
			}
		default:
			if b[k] != va {
				return false
			}
		}
	}
	return true
}
