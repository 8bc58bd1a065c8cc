package daemon_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/testutil"
)

// The start-up log named only the HTTP address (issue 14): it lists every
// listener, so an operator sees where the feed and heartbeats go.
func TestStartLogListsEveryListener(t *testing.T) {
	bin := testutil.Build(t, "./core/cmd/hbd")
	dir := t.TempDir()
	port := testutil.FreePort(t)
	writeConfig(t, dir, port, "hb_listen6: \"\"\n")
	d := testutil.StartDaemon(t, bin, dir, port)
	d.WaitLog(t, "hbd started", 10*time.Second)
	var line string
	for _, l := range strings.Split(d.Stderr(), "\n") {
		if strings.Contains(l, "hbd started") {
			line = l
		}
	}
	for _, want := range []string{fmt.Sprintf("http=127.0.0.1:%d", port), "ws=127.0.0.1:", "heartbeat_ipv4=\"udp 0.0.0.0:"} {
		if !strings.Contains(line, want) {
			t.Errorf("start line %q lacks %q", line, want)
		}
	}
}
