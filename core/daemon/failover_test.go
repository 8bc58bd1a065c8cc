package daemon_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

// TestAgentFailsOverBetweenTwoDaemonsOnOnePostgres: two real hbd
// processes on one PostgreSQL database and one real hbc listing both.
// Heartbeats reach both daemons; sample batches go to the first. The first
// is killed with SIGKILL (a batch may be in flight): batches keep being
// stored through the second, and at the end the database holds every
// sample the agent collected exactly once. The samples come from an exec
// plugin that counts its runs, so the rows must be the values 1..n, each
// once, with n the number of runs (the last run may be cut by the agent's
// stop).
func TestAgentFailsOverBetweenTwoDaemonsOnOnePostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	hbdBin := testutil.Build(t, "./core/cmd/hbd")
	hbcBin := testutil.Build(t, "./core/cmd/hbc")

	type daemon struct {
		dir      string
		http, hb int
		d        *testutil.Daemon
	}
	start := func() *daemon {
		dm := &daemon{dir: t.TempDir(), http: testutil.FreePort(t), hb: testutil.FreePort(t)}
		os.MkdirAll(filepath.Join(dm.dir, "data"), 0o755)
		body := fmt.Sprintf(`hbd_host: 127.0.0.1
hbd_port: %d
ws_port: %d
hb_port: %d
data_dir: ./data
plugins_dir: ./plugins
store:
  driver: postgres
  dsn: %q
watchhosts:
  web01:
    key: "%s"
`, dm.http, testutil.FreePort(t), dm.hb, dsn, testutil.Key)
		if err := os.WriteFile(filepath.Join(dm.dir, "hbd.yaml"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		dm.d = testutil.StartDaemon(t, hbdBin, dm.dir, dm.http)
		return dm
	}
	d1 := start() // creates the tables
	d2 := start()

	agentDir := t.TempDir()
	counter := filepath.Join(agentDir, "count")
	script := filepath.Join(agentDir, "count.sh")
	os.WriteFile(script, []byte(`n=$(( $(cat `+counter+` 2>/dev/null || echo 0) + 1 ))
echo $n > `+counter+`.tmp && mv `+counter+`.tmp `+counter+`
printf '{"n": %d}\n' $n
`), 0o755)
	cfg := fmt.Sprintf(`host: web01
key: "%s"
servers_ipv4: ["127.0.0.1:%d", "127.0.0.1:%d"]
api_urls: ["http://127.0.0.1:%d", "http://127.0.0.1:%d"]
heartbeat_interval: 1s
send_interval: 1s
spool_dir: %s
plugins:
  cpu_monitor: {enabled: false}
  memory_monitor: {enabled: false}
  disk_monitor: {enabled: false}
  network_monitor: {enabled: false}
exec:
  - name: counter
    command: ["/bin/sh", %q]
    interval: 1s
`, testutil.Key, d1.hb, d2.hb, d1.http, d2.http, filepath.Join(agentDir, "spool"), script)
	cfgPath := filepath.Join(agentDir, "hbc.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	var agentLog testutil.Buffer
	agent := exec.Command(hbcBin, "-config", cfgPath)
	agent.Stderr = &agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- agent.Wait() }()
	t.Cleanup(func() {
		agent.Process.Signal(syscall.SIGKILL)
		<-exited
	})

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	values := func() []float64 {
		rows, err := conn.Query(ctx, `SELECT x.vals FROM samples x JOIN series s ON s.id = x.series
			WHERE s.host = 'web01' AND s.plugin = 'counter' ORDER BY x.ts`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []float64
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			if len(b) != 8 {
				t.Fatalf("a counter row holds %d bytes, want one value", len(b))
			}
			out = append(out, math.Float64frombits(binary.LittleEndian.Uint64(b)))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	hostUp := func(base string) bool {
		var hosts []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		}
		getJSON(t, base+"/api/0/hosts", &hosts)
		return len(hosts) == 1 && hosts[0].Name == "web01" && hosts[0].State == "UP"
	}

	testutil.Eventually(t, "web01 UP on both daemons (heartbeats to each) and samples stored", 30*time.Second, func() bool {
		return hostUp(d1.d.BaseURL) && hostUp(d2.d.BaseURL) && len(values()) >= 3
	})
	if strings.Contains(agentLog.String(), "failing over") {
		t.Fatalf("the agent failed over while both daemons ran:\n%s", agentLog.String())
	}

	d1.d.Kill()
	atKill := len(values())
	testutil.Eventually(t, "samples stored through the second daemon", 30*time.Second, func() bool {
		return len(values()) >= atKill+3
	})
	if !strings.Contains(agentLog.String(), "failing over to the next") {
		t.Fatalf("the agent did not log its failover:\n%s", agentLog.String())
	}
	if !hostUp(d2.d.BaseURL) {
		t.Fatal("web01 is not UP on the second daemon")
	}

	agent.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("hbc exit: %v\n%s", err, agentLog.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("hbc did not stop on SIGTERM:\n%s", agentLog.String())
	}
	raw, err := os.ReadFile(counter)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	got := values()
	n := len(got)
	if n != runs && n != runs-1 {
		t.Fatalf("%d rows stored for %d plugin runs: %v", n, runs, got)
	}
	want := make([]float64, n)
	for i := range want {
		want[i] = float64(i + 1)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("stored values %v, want 1..%d each once (none lost, none twice)", got, n)
	}
	t.Logf("%d samples stored once each, %d before the first daemon was killed; %d plugin runs", n, atKill, runs)
}
