package heartbeat

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/testutil"
)

func TestRefusedHeartbeatsAreLoggedOncePerSourcePerMinute(t *testing.T) {
	out := &testutil.Buffer{}
	log := hclog.New(&hclog.LoggerOptions{Output: out, Level: hclog.Info})
	srv := newServer(ServerConfig{Keys: testKeys(nil), Tracker: NewTracker(TrackerConfig{}), Logger: log})
	t0 := time.Unix(1711234567, 0)
	src := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	seq := uint64(0)
	send := func(from string, at time.Duration, key []byte, host string, skew time.Duration) {
		t.Helper()
		seq++
		now := t0.Add(at)
		pkt := heartbeat(t, key, Packet{Session: 1, Seq: seq, SentNanos: now.Add(skew).UnixNano(), Host: []byte(host)})
		if _, ok := srv.handle(pkt, src(from), 0, nil, now, &srv.ctrs[0]); ok {
			t.Fatalf("a bad heartbeat from %s was accepted", from)
		}
	}
	// One source sending unknown-host heartbeats: one line a minute, the
	// next one says how many were held back. The port does not matter.
	send("192.0.2.1:40000", 0, keyWeb01, "nobody", 0)
	send("192.0.2.1:40001", time.Second, keyWeb01, "nobody", 0)
	send("192.0.2.1:40000", 59*time.Second, keyWeb01, "nobody", 0)
	if n := len(out.Lines()); n != 1 {
		t.Fatalf("%d lines within a minute from one source:\n%s", n, strings.Join(out.Lines(), "\n"))
	}
	send("192.0.2.1:40000", 60*time.Second, keyWeb01, "nobody", 0)
	// Other sources have their own minute.
	send("192.0.2.2:40000", 61*time.Second, keyDB01, "web01", 0)                                 // bad signature
	send("[2001:db8::3]:40000", 62*time.Second, keyWeb01, "web01", 6*time.Minute+12*time.Second) // clock skew
	send("[2001:db8::3]:40000", 63*time.Second, keyWeb01, "web01", 6*time.Minute+12*time.Second)

	lines := out.Lines()
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want 4:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	want := [][]string{
		{"[WARN]", "heartbeat refused", `reason="unknown host`, "host=nobody", "source=192.0.2.1", "family=ipv4"},
		{"[WARN]", "heartbeat refused", "source=192.0.2.1", "suppressed=2"},
		{"[WARN]", `reason="bad signature`, "host=web01", "source=192.0.2.2"},
		{"[WARN]", `reason="clock 6m12s ahead of hbd (allowed ±5m0s): fix the host's clock (NTP)"`, "host=web01", "source=2001:db8::3"},
	}
	for i, parts := range want {
		for _, p := range parts {
			if !strings.Contains(lines[i], p) {
				t.Errorf("line %d %q lacks %q", i, lines[i], p)
			}
		}
	}
	if strings.Contains(lines[0], "suppressed") {
		t.Errorf("first line %q claims suppressed refusals", lines[0])
	}
}
