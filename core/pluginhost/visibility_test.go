package pluginhost_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/pluginhost"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/testutil"
)

// journal records what the host journals.
type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) Journal(host, msg string) {
	j.mu.Lock()
	j.lines = append(j.lines, host+"|"+msg)
	j.mu.Unlock()
}

func (j *journal) matching(s string) []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	for _, l := range j.lines {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// TestStartFailuresAreJournaledOncePerChange: a binary that dies at start
// with a panic is retried with backoff; the failure is journaled once with
// its useful line (not once per retry), counted for /metrics and shown in
// Stats; when the same binary starts at last, that is journaled too.
func TestStartFailuresAreJournaledOncePerChange(t *testing.T) {
	dir := t.TempDir()
	real := testutil.Build(t, webhookPkg)
	flag := filepath.Join(t.TempDir(), "ready")
	script := "#!/bin/sh\n[ -f " + flag + " ] || { echo 'starting up' >&2; echo 'panic: cannot read /etc/flaky.conf' >&2; exit 2; }\nexec " + real + "\n"
	tmp := filepath.Join(dir, ".tmp")
	if err := os.WriteFile(tmp, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "hbd-notifier-flaky")); err != nil {
		t.Fatal(err)
	}
	j := &journal{}
	h, _ := pht.Start(t, dir, pluginhost.Options{Journal: j, RestartMax: 200 * time.Millisecond})

	eventually(t, "three failed starts", 20*time.Second, func() bool { return h.Stats().StartFailures >= 3 })
	lines := j.matching("failed to start")
	if len(lines) != 1 || !strings.Contains(lines[0], "|notifier plugin hbd-notifier-flaky failed to start: ") ||
		!strings.Contains(lines[0], "(stderr: panic: cannot read /etc/flaky.conf)") || strings.Count(lines[0], "\n") != 0 {
		t.Fatalf("journal lines about the failure: %q", lines)
	}
	t.Logf("journaled: %s", lines[0])
	st := h.Stats()
	if len(st.Plugins) != 1 || st.Plugins[0].Failing == "" || st.Plugins[0].Failures < 3 || st.Plugins[0].Running {
		t.Fatalf("stats %+v", st.Plugins)
	}
	var metric float64
	for _, f := range h.Metrics() {
		if f.Name == "hbd_notifier_plugin_start_failures_total" {
			f.Collect(func(v float64, _ ...string) { metric = v })
		}
	}
	if metric < 3 {
		t.Errorf("hbd_notifier_plugin_start_failures_total = %v", metric)
	}

	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the binary runs", 20*time.Second, func() bool {
		_, ok := h.Schema("webhook")
		return ok
	})
	eventually(t, "recovery journaled", 5*time.Second, func() bool {
		return len(j.matching("hbd-notifier-flaky started (type webhook) after")) == 1
	})
	if p := h.Stats().Plugins[0]; p.Failing != "" || p.Failures != 0 || p.Protocol != 2 {
		t.Errorf("after the start: %+v", p)
	}
	if n := len(j.matching("failed to start")); n != 1 {
		t.Errorf("%d failure lines journaled, want 1", n)
	}
}

// TestTypeChangeIsAnnounced: a replaced binary tells OnTypeChange
// watchers, so the registry can re-validate the type's channels.
func TestTypeChangeIsAnnounced(t *testing.T) {
	dir := pht.Dir(t, webhookPkg)
	h, _ := startHost(t, dir, nil)
	var mu sync.Mutex
	var got []string
	h.OnTypeChange(func(typ string) {
		mu.Lock()
		got = append(got, typ)
		mu.Unlock()
	})
	install(t, dir, pushoverPkg, filepath.Base(webhookPkg)) // replaced by another build
	eventually(t, "type change announced", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	if got[0] != "pushover" {
		t.Errorf("announced %v", got)
	}
}
