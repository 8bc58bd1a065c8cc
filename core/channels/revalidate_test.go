package channels_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/pluginhost"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
)

const (
	chatPkg       = "./core/channels/testdata/chat"
	chatStrictPkg = "./core/channels/testdata/chatstrict"
)

type journalRec struct {
	mu    sync.Mutex
	lines []string
}

func (j *journalRec) Journal(_, msg string) {
	j.mu.Lock()
	j.lines = append(j.lines, msg)
	j.mu.Unlock()
}

func (j *journalRec) count(s string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := 0
	for _, l := range j.lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// startReg starts a store, a plugin host on dir and a registry with the
// config yamlText, journaling to j.
func startReg(t *testing.T, yamlText, dir string, j channels.Journal) (*channels.Registry, *pluginhost.Host) {
	t.Helper()
	cfg := testutil.Config(t, strings.NewReplacer("HASH", hash, "KEY", testutil.Key).Replace(yamlText))
	conf := func() *config.Config { return cfg }
	st, err := store.Open(context.Background(), t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	host, _ := pht.Start(t, dir, pluginhost.Options{})
	reg, err := channels.New(channels.Options{Config: conf, Store: st, Journal: j, Plugins: host,
		Policy: access.NewPolicy(conf, access.NewHosts(cfg))})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return reg, host
}

// TestStoredChannelsAreRevalidatedWhenThePluginIsReplaced: a channel saved
// under a lenient plugin is flagged (API view and journal, once) when a
// stricter build replaces the plugin; an update that leaves the failing
// field alone is still saved, one that breaks a field it changes is not,
// and fixing the field clears the flag.
func TestStoredChannelsAreRevalidatedWhenThePluginIsReplaced(t *testing.T) {
	dir := t.TempDir()
	pht.Install(t, dir, chatPkg, "hbd-notifier-chat")
	j := &journalRec{}
	reg, host := startReg(t, yaml, dir, j)
	host.OnTypeChange(func(typ string) { reg.Revalidate(context.Background(), typ) })

	ctx := context.Background()
	alice := access.Principal{User: "alice"}
	if err := reg.CreateChannel(ctx, alice, channels.Input{Name: "team", Type: "chat", Fields: map[string]string{"room": "ops"}}); err != nil {
		t.Fatal(err)
	}
	problem := func() *channels.Problem {
		for _, v := range reg.ListChannels(alice, nil) {
			if v.Name == "team" {
				return v.Problem
			}
		}
		t.Fatal("channel team not listed")
		return nil
	}
	if p := problem(); p != nil {
		t.Fatalf("fresh channel flagged: %+v", p)
	}

	pht.Install(t, dir, chatStrictPkg, "hbd-notifier-chat")
	pht.Eventually(t, "channel flagged after the plugin change", 30*time.Second, func() bool { return problem() != nil })
	if p := problem(); p.Field != "room" || !strings.Contains(p.Message, `must be a room id starting with "!"`) || p.Since.IsZero() {
		t.Fatalf("problem %+v", p)
	}
	if n := j.count("notification channel team no longer passes the checks of its type"); n != 1 {
		t.Fatalf("%d journal lines about the problem, want 1: %q", n, j.lines)
	}

	// Only hosts: saved, still flagged.
	hosts := []string{"web*"}
	if err := reg.UpdateChannel(ctx, alice, "team", channels.Input{Hosts: &hosts}); err != nil {
		t.Fatalf("update of hosts only refused: %v", err)
	}
	// Another field, the failing one untouched: saved, still flagged.
	if err := reg.UpdateChannel(ctx, alice, "team", channels.Input{Fields: map[string]string{"greeting": "hi"}}); err != nil {
		t.Fatalf("update of another field refused: %v", err)
	}
	if p := problem(); p == nil || p.Field != "room" {
		t.Fatalf("flag lost: %+v", p)
	}
	// Changing the failing field to another bad value: refused, naming it.
	err := reg.UpdateChannel(ctx, alice, "team", channels.Input{Fields: map[string]string{"room": "dev"}})
	var ce *channels.Error
	if !errors.As(err, &ce) || !errors.Is(err, channels.ErrInvalid) || ce.Field != "room" {
		t.Fatalf("bad room accepted or not named: %v", err)
	}
	// Fixed: unflagged, journaled.
	if err := reg.UpdateChannel(ctx, alice, "team", channels.Input{Fields: map[string]string{"room": "!ops:example.org"}}); err != nil {
		t.Fatal(err)
	}
	if p := problem(); p != nil {
		t.Fatalf("still flagged after the fix: %+v", p)
	}
	if n := j.count("notification channel team passes its checks again"); n != 1 {
		t.Fatalf("%d journal lines about the fix", n)
	}
	if n := j.count("no longer passes"); n != 1 {
		t.Fatalf("the problem was journaled %d times", n)
	}
}

// TestTestNotificationIsARealisticSample: "test channel" sends the SDK's
// sample alert (host, metric, value, threshold), marked as a test.
func TestTestNotificationIsARealisticSample(t *testing.T) {
	yamlText := yaml + "channel_destinations: {allow: [127.0.0.0/8]}\npublic_url: https://hbd.example.com\n"
	reg, _ := startReg(t, yamlText, pht.Dir(t, pht.Webhook), &journalRec{})
	rcv := pht.NewReceiver(t)
	alice := access.Principal{User: "alice"}
	ctx := context.Background()
	if err := reg.CreateChannel(ctx, alice, channels.Input{Name: "mine", Type: "webhook", Fields: map[string]string{"url": rcv.URL}}); err != nil {
		t.Fatal(err)
	}
	if err := reg.TestChannel(ctx, alice, "mine"); err != nil {
		t.Fatal(err)
	}
	reqs := rcv.Wait(t, 1, 10*time.Second)
	var p map[string]any
	if err := json.Unmarshal(reqs[0].Body, &p); err != nil {
		t.Fatal(err)
	}
	if p["kind"] != "test" || p["test"] != true || p["host"] != "web01" || p["metric_path"] != "cpu_monitor.cpu_percent" ||
		p["value"] != 97.2 || p["threshold"] != 95.0 || p["comparison"] != ">=" || p["channel"] != "mine" ||
		!strings.HasPrefix(p["title"].(string), "[TEST] web01 cpu_monitor.cpu_percent 97.2 ≥ 95") ||
		!strings.Contains(p["message"].(string), "requested by alice") || p["url"] != "https://hbd.example.com/hosts/web01?metric=cpu_percent&plugin=cpu_monitor#history" || !strings.Contains(p["id"].(string), "/") {
		t.Errorf("test payload %s", reqs[0].Body)
	}
}
