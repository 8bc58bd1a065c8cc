package daemon

import (
	"context"
	"fmt"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/store"
)

// enroll_key registered unbounded hosts (19,129 in a test) and look-alikes
// of configured ones (WEB01, web01.) with keys and histories of their own
// (issue 10).
func TestSelfRegistrationIsBoundedAndCanonical(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := &config.Config{
		EnrollKey:       "enroll-key-0123456789abcdef0123456789",
		MaxDynamicHosts: 3,
		Watchhosts:      map[string]config.WatchHost{"web01": {Key: "web01-key-0123456789abcdef0123456789"}},
	}
	d := &Daemon{Store: st, log: hclog.NewNullLogger()}
	d.cfg.Store(cfg)
	keys := d.keysFor(cfg)

	if _, dyn, ok := keys("web01"); !ok || dyn {
		t.Fatal("the configured host lost its key")
	}
	for _, lookalike := range []string{"WEB01", "web01.", "Db01"} {
		if _, _, ok := keys(lookalike); ok {
			t.Errorf("%q may register itself", lookalike)
		}
	}
	for i := 0; i < cfg.MaxDynamicHosts; i++ {
		name := fmt.Sprintf("dyn%02d", i)
		if _, dyn, ok := keys(name); !ok || !dyn {
			t.Fatalf("%s refused below the bound", name)
		}
		if _, err := st.EnsureHost(ctx, name, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, ok := keys("one-too-many"); ok {
		t.Error("a host registered past max_dynamic_hosts")
	}
	if _, _, ok := keys("dyn00"); !ok {
		t.Error("a known self-registered host was refused at the bound")
	}
}
