package pluginhost_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/pluginhost"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/level"
)

const (
	webhookPkg  = pht.Webhook
	pushoverPkg = pht.Pushover
)

var (
	install    = pht.Install
	eventually = pht.Eventually
)

func startHost(t testing.TB, dir string, sums map[string]string) (*pluginhost.Host, *pht.Logs) {
	t.Helper()
	return pht.Start(t, dir, pluginhost.Options{Checksums: sums})
}

func pidOf(h *pluginhost.Host, typ string) int {
	for _, p := range h.Stats().Plugins {
		if p.Type == typ && p.Running {
			return p.Pid
		}
	}
	return 0
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie still accepts signal 0; it must have been reaped too.
	b, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "stat"))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for n > 0 || i == len(b) {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

var testEvent = sdk.Event{ID: "t1", Channel: "ops", Host: "web01", MetricPath: "cpu_monitor.cpu_percent", Level: level.Critical, Value: 97}

func TestStartDiscoversPluginsAndTheirSchemas(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, webhookPkg, "hbd-notifier-webhook")
	install(t, dir, pushoverPkg, "hbd-notifier-pushover")
	os.WriteFile(filepath.Join(dir, "README"), []byte("not a plugin"), 0o644)
	h, _ := startHost(t, dir, nil)

	types := h.Types()
	if len(types) != 2 {
		t.Fatalf("types = %v, want webhook and pushover", types)
	}
	if types["webhook"].Label != "Webhook" || types["pushover"].Label != "Pushover" {
		t.Errorf("labels: %q %q", types["webhook"].Label, types["pushover"].Label)
	}
	if f, ok := types["pushover"].Field("token"); !ok || f.Type != sdk.FieldSecret || !f.Required {
		t.Errorf("pushover token field = %+v", f)
	}

	rcv := pht.NewReceiver(t)
	if err := h.Notify(context.Background(), "webhook", sdk.Config{"url": rcv.URL}, testEvent); err != nil {
		t.Fatal(err)
	}
	if reqs := rcv.Requests(); len(reqs) != 1 || !strings.Contains(string(reqs[0].Body), `"host":"web01"`) {
		t.Fatalf("receiver got %+v", reqs)
	}
	if err := h.Validate(context.Background(), "webhook", sdk.Config{"url": "ftp://x"}); err == nil || sdk.ErrorField(err) != "url" {
		t.Errorf("Validate(ftp url) = %v, want an error about url", err)
	}
	if err := h.Notify(context.Background(), "sms", sdk.Config{}, testEvent); !errors.Is(err, pluginhost.ErrUnknownType) {
		t.Errorf("Notify(unknown type) = %v, want ErrUnknownType", err)
	}
	st := h.Stats()
	if len(st.Plugins) != 2 || st.Starts != 2 || st.Calls != 3 || st.CallErrors != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestHotReloadAddReplaceRemove(t *testing.T) {
	dir := t.TempDir()
	h, logs := startHost(t, dir, nil)
	if len(h.Types()) != 0 {
		t.Fatalf("empty dir has types %v", h.Types())
	}

	install(t, dir, webhookPkg, "hbd-notifier-webhook")
	eventually(t, "the dropped-in webhook type", 5*time.Second, func() bool { _, ok := h.Schema("webhook"); return ok })
	pid := pidOf(h, "webhook")

	install(t, dir, webhookPkg, "hbd-notifier-webhook") // a new file replaces the old one
	eventually(t, "the replaced plugin's restart", 5*time.Second, func() bool {
		p := pidOf(h, "webhook")
		return p != 0 && p != pid
	})
	eventually(t, "the old process to end", 5*time.Second, func() bool { return !alive(pid) })
	rcv := pht.NewReceiver(t)
	if err := h.Notify(context.Background(), "webhook", sdk.Config{"url": rcv.URL}, testEvent); err != nil {
		t.Fatalf("notify after replace: %v", err)
	}

	newPid := pidOf(h, "webhook")
	os.Remove(filepath.Join(dir, "hbd-notifier-webhook"))
	eventually(t, "the removed type to go", 5*time.Second, func() bool { _, ok := h.Schema("webhook"); return !ok })
	if err := h.Notify(context.Background(), "webhook", sdk.Config{"url": rcv.URL}, testEvent); !errors.Is(err, pluginhost.ErrUnknownType) {
		t.Errorf("notify after removal = %v, want ErrUnknownType", err)
	}
	eventually(t, "the removed plugin's process to end", 5*time.Second, func() bool { return !alive(newPid) })
	for _, want := range []string{"notifier plugin found", "notifier plugin changed", "notifier plugin removed", "notifier type unregistered"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

func TestKilledPluginIsRestartedAndServesTheNextCall(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, webhookPkg, "hbd-notifier-webhook")
	h, logs := startHost(t, dir, nil)
	pid := pidOf(h, "webhook")
	if pid == 0 {
		t.Fatal("no pid")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rcv := pht.NewReceiver(t)
	// The call races the crash; it waits for the restart and goes through.
	if err := h.Notify(context.Background(), "webhook", sdk.Config{"url": rcv.URL}, testEvent); err != nil {
		t.Fatalf("notify right after kill: %v", err)
	}
	eventually(t, "a new process", 5*time.Second, func() bool { p := pidOf(h, "webhook"); return p != 0 && p != pid })
	if rcv.Count() != 1 {
		t.Errorf("receiver got %d requests", rcv.Count())
	}
	st := h.Stats()
	if st.Restarts < 1 || st.Plugins[0].Restarts < 1 {
		t.Errorf("restarts not counted: %+v", st)
	}
	if !strings.Contains(logs.String(), "notifier plugin exited; restarting it") {
		t.Errorf("restart not logged:\n%s", logs)
	}
}

func TestChecksumPins(t *testing.T) {
	dir := t.TempDir()
	sumOf := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:])
	}
	hook := sumOf(install(t, dir, webhookPkg, "hbd-notifier-webhook"))
	po := sumOf(install(t, dir, pushoverPkg, "hbd-notifier-pushover"))
	install(t, dir, pushoverPkg, "hbd-notifier-unpinned")

	h, logs := startHost(t, dir, map[string]string{
		"hbd-notifier-webhook":  strings.ToUpper(hook),
		"hbd-notifier-pushover": strings.Repeat("0", 64),
	})
	if _, ok := h.Schema("webhook"); !ok {
		t.Error("pinned binary with the right SHA-256 was not registered")
	}
	if _, ok := h.Schema("pushover"); ok {
		t.Error("binary with a mismatching SHA-256 was registered")
	}
	if !strings.Contains(logs.String(), "SHA-256 does not match plugin_checksums") {
		t.Errorf("mismatch not logged:\n%s", logs)
	}
	refused := func() map[string]string {
		out := map[string]string{}
		for _, r := range h.Stats().Refused {
			out[r.Binary] = r.Reason
		}
		return out
	}
	r := refused()
	if len(r) != 2 || !strings.Contains(r["hbd-notifier-pushover"], "SHA-256 does not match") ||
		!strings.Contains(r["hbd-notifier-unpinned"], "not listed in plugin_checksums") {
		t.Errorf("refused = %v", r)
	}

	// Fixing the pin (a config reload) lets it run; the unpinned one stays out.
	h.SetChecksums(map[string]string{"hbd-notifier-webhook": hook, "hbd-notifier-pushover": po})
	h.Rescan()
	if _, ok := h.Schema("pushover"); !ok {
		t.Error("pushover not registered after its pin was fixed")
	}
	if r := refused(); len(r) != 1 || r["hbd-notifier-unpinned"] == "" {
		t.Errorf("refused after fixing the pin = %v", r)
	}
	// Without any pins every acceptable binary runs; the unpinned copy of
	// pushover then conflicts with the pinned one.
	h.SetChecksums(nil)
	h.Rescan()
	if r := refused(); len(r) != 1 || !strings.Contains(r["hbd-notifier-unpinned"], `type "pushover" is already provided`) {
		t.Errorf("refused without pins = %v", r)
	}
}

func TestUnsafeFilesAreRefused(t *testing.T) {
	outside := t.TempDir()
	target := install(t, outside, webhookPkg, "hbd-notifier-webhook")
	dir := t.TempDir()
	inner := filepath.Join(dir, "versions")
	os.Mkdir(inner, 0o755)
	innerBin := install(t, inner, pushoverPkg, "hbd-notifier-pushover")

	cases := []struct {
		name, reason string
		make         func(t *testing.T, path string)
	}{
		{"hbd-notifier-world", "writable by group or others", func(t *testing.T, p string) {
			install(t, dir, webhookPkg, filepath.Base(p))
			os.Chmod(p, 0o757)
		}},
		{"hbd-notifier-group", "writable by group or others", func(t *testing.T, p string) {
			install(t, dir, webhookPkg, filepath.Base(p))
			os.Chmod(p, 0o775)
		}},
		{"hbd-notifier-noexec", "not executable", func(t *testing.T, p string) {
			install(t, dir, webhookPkg, filepath.Base(p))
			os.Chmod(p, 0o644)
		}},
		{"hbd-notifier-outside", "resolves outside plugins_dir", func(t *testing.T, p string) { os.Symlink(target, p) }},
		{"hbd-notifier-dotdot", "resolves outside plugins_dir", func(t *testing.T, p string) {
			os.Symlink(filepath.Join("..", filepath.Base(outside), "hbd-notifier-webhook"), p)
		}},
		{"hbd-notifier-dir", "not a regular file", func(t *testing.T, p string) { os.Mkdir(p, 0o755) }},
	}
	if os.Geteuid() == 0 {
		// Only root can give a file away; elsewhere this case cannot be built.
		cases = append(cases, struct {
			name, reason string
			make         func(t *testing.T, path string)
		}{"hbd-notifier-foreign", "owned by uid 65534", func(t *testing.T, p string) {
			install(t, dir, webhookPkg, filepath.Base(p))
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}})
	}
	for _, c := range cases {
		c.make(t, filepath.Join(dir, c.name))
	}
	// A symlink to a binary inside plugins_dir is fine.
	os.Symlink(innerBin, filepath.Join(dir, "hbd-notifier-pushover"))

	h, logs := startHost(t, dir, nil)
	if types := h.Types(); len(types) != 1 || types["pushover"].Type != "pushover" {
		t.Errorf("types = %v, want only pushover (through the inner symlink)", types)
	}
	refused := map[string]string{}
	for _, r := range h.Stats().Refused {
		refused[r.Binary] = r.Reason
	}
	for _, c := range cases {
		if !strings.Contains(refused[c.name], c.reason) {
			t.Errorf("%s: refused for %q, want %q", c.name, refused[c.name], c.reason)
		}
	}
	if n := strings.Count(logs.String(), "notifier plugin refused"); n != len(cases) {
		t.Errorf("%d refusals logged, want %d", n, len(cases))
	}
	// A rescan does not log them again.
	h.Rescan()
	if n := strings.Count(logs.String(), "notifier plugin refused"); n != len(cases) {
		t.Errorf("%d refusals logged after rescan, want %d", n, len(cases))
	}
	// Fixing the mode lets the plugin in.
	os.Chmod(filepath.Join(dir, "hbd-notifier-world"), 0o755)
	h.Rescan()
	if _, ok := h.Schema("webhook"); !ok {
		t.Error("fixed binary not registered")
	}
}

func TestSecondBinaryClaimingATypeIsRefused(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, webhookPkg, "hbd-notifier-webhook")
	install(t, dir, webhookPkg, "hbd-notifier-webhook2")
	h, logs := startHost(t, dir, nil)
	st := h.Stats()
	if len(st.Plugins) != 1 || st.Plugins[0].Binary != "hbd-notifier-webhook" {
		t.Fatalf("running = %+v", st.Plugins)
	}
	if len(st.Refused) != 1 || st.Refused[0].Binary != "hbd-notifier-webhook2" ||
		!strings.Contains(st.Refused[0].Reason, `type "webhook" is already provided by hbd-notifier-webhook`) {
		t.Fatalf("refused = %+v", st.Refused)
	}
	if !strings.Contains(logs.String(), "already provided by") {
		t.Errorf("conflict not logged")
	}
	// When the first goes, the second takes the type over.
	os.Remove(filepath.Join(dir, "hbd-notifier-webhook"))
	h.Rescan()
	h.Rescan()
	st = h.Stats()
	if len(st.Plugins) != 1 || st.Plugins[0].Binary != "hbd-notifier-webhook2" || st.Plugins[0].Type != "webhook" {
		t.Errorf("after removal running = %+v", st.Plugins)
	}
}

func TestCloseLeavesNoProcesses(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, webhookPkg, "hbd-notifier-webhook")
	install(t, dir, pushoverPkg, "hbd-notifier-pushover")
	h, _ := startHost(t, dir, nil)
	var pids []int
	for _, p := range h.Stats().Plugins {
		pids = append(pids, p.Pid)
	}
	if len(pids) != 2 {
		t.Fatalf("pids = %v", pids)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("plugin process %d still exists after Close", pid)
		}
	}
	if err := h.Notify(context.Background(), "webhook", sdk.Config{}, testEvent); !errors.Is(err, pluginhost.ErrClosed) {
		t.Errorf("Notify after Close = %v", err)
	}
	if len(h.Types()) != 0 {
		t.Errorf("types after Close: %v", h.Types())
	}
}

func TestCallsAreBoundedByTheTimeout(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, webhookPkg, "hbd-notifier-webhook")
	h := pluginhost.New(pluginhost.Options{Dir: dir, CallTimeout: 300 * time.Millisecond})
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	// The receiver never answers until the test ends: Notify returning at
	// all proves the call timeout cut it short (no elapsed time asserted).
	err := h.Notify(context.Background(), "webhook", sdk.Config{"url": srv.URL}, testEvent)
	if err == nil || sdk.IsPermanent(err) {
		t.Fatalf("slow notify = %v, want a retryable error", err)
	}
}

// TestPluginsDoNotInheritTheDaemonsEnvironment runs a probe plugin while the
// daemon's environment holds a secret: the plugin must not see it (only the
// allow-listed variables such as PATH pass).
func TestPluginsDoNotInheritTheDaemonsEnvironment(t *testing.T) {
	t.Setenv("HBD_PROBE_SECRET", "s3cret-db-password")
	dir := t.TempDir()
	install(t, dir, "./core/pluginhost/testdata/hbd-notifier-envprobe", "hbd-notifier-envprobe")
	h, _ := startHost(t, dir, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Notify(ctx, "envprobe", sdk.Config{}, sdk.Event{Host: "web01", Level: "WARNING"}); err != nil {
		t.Fatalf("plugin saw the daemon's environment or lost PATH: %v", err)
	}
}

func TestPluginsDirWritableByOthersIsRefused(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, webhookPkg, "hbd-notifier-webhook")
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	h, _ := startHost(t, dir, nil)
	if len(h.Types()) != 0 {
		t.Fatalf("a binary in a world-writable plugins_dir was run: %v", h.Types())
	}
	if r := h.Stats().Refused; len(r) != 1 || !strings.Contains(r[0].Reason, "writable by group or others") {
		t.Fatalf("refused = %+v", r)
	}
	// A sticky directory (like /tmp) only lets owners replace their files.
	os.Chmod(dir, 0o777|os.ModeSticky)
	h.Rescan()
	if _, ok := h.Schema("webhook"); !ok {
		t.Fatal("binary in a sticky plugins_dir refused")
	}
}

// TestEveryBuiltInNotifierRunsAsAPlugin builds every notifier under
// notifiers/, installs them together and checks that each starts as a
// real plugin process and registers the type named after its directory,
// with a schema the host accepts.
func TestEveryBuiltInNotifierRunsAsAPlugin(t *testing.T) {
	pkgs := pht.BuiltIn(t)
	if len(pkgs) < 12 {
		t.Fatalf("%d built-in notifiers, want at least 12: %v", len(pkgs), pkgs)
	}
	h, logs := startHost(t, pht.Dir(t, pkgs...), nil)
	eventually(t, "every built-in type", 60*time.Second, func() bool { return len(h.Types()) == len(pkgs) })
	for _, pkg := range pkgs {
		typ := filepath.Base(filepath.Dir(filepath.Dir(pkg)))
		schema, ok := h.Schema(typ)
		if !ok {
			t.Errorf("%s: type %q not registered; logs:\n%s", pkg, typ, logs)
			continue
		}
		if err := schema.Check(); err != nil || schema.Label == "" {
			t.Errorf("%s: schema %+v: %v", typ, schema, err)
		}
		if pidOf(h, typ) == 0 {
			t.Errorf("%s: no running process", typ)
		}
	}
}
