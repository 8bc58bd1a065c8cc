package loadgen

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

// The two-daemon PostgreSQL scenario of issue 15 (make bench-ha). It is a
// test so that it can start PostgreSQL the way every PostgreSQL test does
// (core/testutil/pgtest), but it is a benchmark: without -ha it does
// nothing, so `make test` never runs it; `go vet ./...` builds it.
var (
	haRun      = flag.Bool("ha", false, "run the two-daemon PostgreSQL scenario (make bench-ha)")
	haHosts    = flag.Int("ha.hosts", 10000, "simulated hosts")
	haDuration = flag.Duration("ha.duration", 60*time.Second, "length of the throughput phase")
	haKills    = flag.Int("ha.kills", 10, "leader kills (kill -9, then restart) in the failover phase")
	haConns    = flag.Int("ha.conns", 64, "ingest connections, spread over the two daemons (10,000 agents send concurrently; 16 measured the latency of one batch, not throughput)")
	haBatch    = flag.Int("ha.batch", 20, "samples per batch")
	haKillRate = flag.Float64("ha.kill-ingest-rate", 5000, "samples/s posted during the failover phase")
	haSettle   = flag.Duration("ha.settle", 5*time.Second, "wait after a restarted daemon answers before the next kill")
	haHBSocks  = flag.Int("ha.hb-sockets", 2, "heartbeat sockets per daemon")
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// haNode is one `hbd serve` of the scenario.
type haNode struct {
	name         string
	dir          string
	http, hb, ws int
	d            *haProc
	cpuAt        time.Duration
}

func (n *haNode) base() string { return fmt.Sprintf("http://127.0.0.1:%d", n.http) }

// ackedBatch is a batch some daemon answered 200: its samples must all be
// in PostgreSQL at the end.
type ackedBatch struct {
	host int
	us   int64 // the first sample's timestamp, µs
	n    int
}

type ackLog struct {
	mu      sync.Mutex
	batches []ackedBatch
}

func (a *ackLog) add(b ackedBatch) {
	a.mu.Lock()
	a.batches = append(a.batches, b)
	a.mu.Unlock()
}

// trackedIngest posts batches over conns connections, connection c to
// daemon c%2 first and to the other one when that fails (a batch is
// idempotent by its identity, so a retry of a stored batch is answered as
// a duplicate), and logs every acknowledged batch. rate is samples/s in
// all (0: closed loop).
type trackedIngest struct {
	sent, acked, accepted, dups, failed, retried atomic.Uint64
}

func (ti *trackedIngest) run(ctx context.Context, bases func() []string, hosts []fleetHost, conns, batch int, rate float64, seq *uint64Counter, log *ackLog) {
	client := newHTTPClient(conns * 2)
	var wg sync.WaitGroup
	for c := range conns {
		var mine []int
		for i := c; i < len(hosts); i += conns {
			mine = append(mine, i)
		}
		var interval time.Duration
		if rate > 0 {
			interval = time.Duration(float64(time.Second) * float64(batch) * float64(conns) / rate)
		}
		wg.Go(func() {
			next := time.Now()
			body := make([]byte, 0, 1024*batch)
			for i := 0; ctx.Err() == nil; i = (i + 1) % len(mine) {
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						select {
						case <-ctx.Done():
							return
						case <-time.After(d):
						}
					} else if d < -time.Second {
						next = time.Now()
					}
					next = next.Add(interval)
				}
				h := &hosts[mine[i]]
				now := time.Now()
				us := now.UnixMicro()
				body = appendBatch(body[:0], batch, float64(us)/1e6, seq.add(uint64(batch)), h.NonOK)
				ti.sent.Add(uint64(batch))
				bs := bases()
				ok := false
				for try := range 4 {
					base := bs[(c+try)%len(bs)]
					if try > 0 {
						ti.retried.Add(1)
					}
					rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
					status, ans, _, err := postBatch(rctx, client, base, h, now, body)
					cancel()
					if err == nil && status == http.StatusOK {
						ti.acked.Add(1)
						ti.accepted.Add(uint64(ans.Accepted))
						if ans.Duplicate {
							ti.dups.Add(1)
						}
						log.add(ackedBatch{host: mine[i], us: us, n: batch})
						ok = true
						break
					}
					if try > 0 {
						time.Sleep(200 * time.Millisecond)
					}
				}
				if !ok {
					ti.failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// TestBenchHA is the scenario: PostgreSQL (pgtest), two `hbd serve` with
// cluster enabled on one database, a fleet whose heartbeats go to both
// daemons (each its own session, as hbc does) and whose sample batches are
// spread over the two. Phases:
//
//  1. seed: one heartbeat and one batch per host to each daemon;
//  2. throughput, two phases of -ha.duration each: heartbeats alone as fast
//     as acks come back (heartbeats/s acked), then batches in a closed loop
//     with the fleet's heartbeats alongside (samples/s acknowledged, and
//     persisted: rows counted in PostgreSQL);
//  3. failover (-ha.kills): heartbeats at the fleet's rate, batches at
//     -ha.kill-ingest-rate; the leader (newest cluster_epochs row) gets
//     kill -9, the time to the next epoch row is the failover time, the
//     killed daemon is restarted;
//  4. every acknowledged batch's samples are looked up in PostgreSQL.
//
// It fails when an acknowledged sample is missing.
func TestBenchHA(t *testing.T) {
	if !*haRun {
		t.Skip("the two-daemon PostgreSQL scenario runs with -ha (make bench-ha)")
	}
	ctx := context.Background()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "bench-ha: "+format+"\n", args...)
	}
	dsn := pgtest.DSN(t)
	hbdBin := testutil.Build(t, "./core/cmd/hbd")
	keyRaw := make([]byte, 32)
	for i := range keyRaw {
		keyRaw[i] = byte(i*37 + 11)
	}
	enroll := hex.EncodeToString(keyRaw)

	nodes := []*haNode{{name: "ha1"}, {name: "ha2"}}
	for _, n := range nodes {
		n.dir = t.TempDir()
		n.http, n.hb, n.ws = testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t)
		os.MkdirAll(filepath.Join(n.dir, "data"), 0o700)
		os.MkdirAll(filepath.Join(n.dir, "plugins"), 0o700)
		body := fmt.Sprintf(`hbd_host: 127.0.0.1
hbd_port: %d
ws_port: %d
hb_port: %d
hb_listen4: 127.0.0.1
hb_listen6: "::1"
data_dir: ./data
plugins_dir: ./plugins
log_level: warn
enroll_key: %q
watch_dynamic: true
max_dynamic_hosts: %d
store:
  driver: postgres
  dsn: %q
cluster:
  enabled: true
  node: %s
thresholds:
  "cpu_monitor.cpu_percent": {warning: 80, critical: 95}
`, n.http, n.ws, n.hb, enroll, *haHosts, dsn+" application_name="+n.name, n.name)
		if err := os.WriteFile(filepath.Join(n.dir, "hbd.yaml"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex // guards haNode.d and the live list
	startNode := func(n *haNode) {
		d := startHAProc(t, hbdBin, n.dir, n.base())
		mu.Lock()
		n.d = d
		mu.Unlock()
	}
	for _, n := range nodes {
		startNode(n)
	}
	liveBases := func() []string {
		return []string{nodes[0].base(), nodes[1].base()}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	sampleRows := func() int64 {
		var n int64
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM samples`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	newestEpoch := func() (int64, string) {
		var e int64
		var h string
		err := conn.QueryRow(ctx, `SELECT epoch, holder FROM cluster_epochs ORDER BY epoch DESC LIMIT 1`).Scan(&e, &h)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		return e, h
	}
	cpu := func(n *haNode) time.Duration {
		mu.Lock()
		pid := n.d.cmd.Process.Pid
		mu.Unlock()
		s, err := readProc(pid)
		if err != nil {
			return 0
		}
		return s.cpu
	}

	enrollKey := []byte(enroll)
	hosts := newFleet("ha", *haHosts, enrollKey, 5)
	// Each daemon gets the fleet with sessions of its own, as hbc does.
	var hbs []*hbLoad
	for i, n := range nodes {
		fl := hosts
		if i > 0 {
			fl = newFleet("ha", *haHosts, enrollKey, 5)
		}
		l, err := newHBLoad(fl, fmt.Sprintf("127.0.0.1:%d", n.hb), "", *haHBSocks, 64)
		if err != nil {
			t.Fatal(err)
		}
		defer l.close()
		hbs = append(hbs, l)
	}
	var seq uint64Counter
	acks := &ackLog{}
	logf("PostgreSQL %s (fsync=%s), hbd %s and %s, %d hosts, load average %s", pgtest.Shared(t).Dir, envOr("HBD_PGTEST_FSYNC", "off"), nodes[0].name, nodes[1].name, *haHosts, loadAvg())

	// 1. Seed: every host known to both daemons, every session claimed.
	for round := range 2 {
		var waits []func()
		for _, l := range hbs {
			waits = append(waits, l.start(ctx, 0, true))
		}
		for _, w := range waits {
			w()
		}
		if round == 0 {
			var ti trackedIngest
			sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			ti.runOnce(sctx, liveBases, hosts, *haConns, *haBatch, &seq, acks)
			cancel()
			logf("seed: %d batches acknowledged, %d failed", ti.acked.Load(), ti.failed.Load())
		}
		time.Sleep(1500 * time.Millisecond) // a flush interval: the claims land
	}

	// 2a. Heartbeats: as fast as acks come back, nothing else.
	la0 := loadAvg()
	for _, n := range nodes {
		n.cpuAt = cpu(n)
	}
	var marks []hbMark
	for _, l := range hbs {
		marks = append(marks, l.mark())
	}
	pctx, cancel := context.WithTimeout(ctx, *haDuration)
	t0 := time.Now()
	var waits []func()
	for _, l := range hbs {
		waits = append(waits, l.start(pctx, 0, false))
	}
	for _, w := range waits {
		w()
	}
	cancel()
	secs := time.Since(t0).Seconds()
	time.Sleep(300 * time.Millisecond)
	var hbTotal, hbSent float64
	for i, l := range hbs {
		f := l.figures(marks[i], secs)
		hbTotal += float64(f.Acked)
		hbSent += float64(f.Sent)
		logf("heartbeats: %s sent %d, acked %d (%.0f/s), rtt p50 %.2f ms p99 %.2f ms, window stalls %d",
			nodes[i].name, f.Sent, f.Acked, f.PerSec, f.RTT.P50, f.RTT.P99, f.Stalls)
	}
	logf("heartbeats (%.1f s, load average %s -> %s; daemon CPU %s): %.0f/s acked in total (%.0f/s sent) [target >= 60000/s]",
		secs, la0, loadAvg(), cpuNote(nodes, cpu, secs), hbTotal/secs, hbSent/secs)

	// 2b. Samples: batches in a closed loop over both daemons, the
	// fleet's heartbeats (one per host every 5 s to each daemon) alongside.
	rows0 := sampleRows()
	la0 = loadAvg()
	for _, n := range nodes {
		n.cpuAt = cpu(n)
	}
	pctx, cancel = context.WithTimeout(ctx, *haDuration)
	t0 = time.Now()
	waits = waits[:0]
	for _, l := range hbs {
		waits = append(waits, l.start(pctx, float64(*haHosts)/hbInterval.Seconds(), false))
	}
	var ti trackedIngest
	ti.run(pctx, liveBases, hosts, *haConns, *haBatch, 0, &seq, acks)
	for _, w := range waits {
		w()
	}
	cancel()
	secs = time.Since(t0).Seconds()
	rows1 := sampleRows()
	logf("samples (%.1f s, load average %s -> %s; daemon CPU %s): %.0f/s acknowledged (%d batches, %d failed), %.0f/s persisted (%d rows in PostgreSQL) [target >= 20000/s]",
		secs, la0, loadAvg(), cpuNote(nodes, cpu, secs), float64(ti.accepted.Load())/secs, ti.acked.Load(), ti.failed.Load(), float64(rows1-rows0)/secs, rows1-rows0)

	// 3. Failover: kill -9 the leader, time the next epoch, restart it.
	if e, h := newestEpoch(); e > 1 {
		logf("before any kill: epoch %d (by %s): the lease changed hands %d times under load alone", e, h, e-1)
	}
	fctx, fcancel := context.WithCancel(ctx)
	var bg sync.WaitGroup
	for _, l := range hbs {
		w := l.start(fctx, 2*float64(*haHosts)/hbInterval.Seconds()/2, false)
		bg.Go(w)
	}
	var fi trackedIngest
	bg.Go(func() { fi.run(fctx, liveBases, hosts, *haConns, *haBatch, *haKillRate, &seq, acks) })
	var times []time.Duration
	for k := 0; k < *haKills; k++ {
		var epoch int64
		var holder string
		testutil.Eventually(t, "a leader", 2*time.Minute, func() bool {
			epoch, holder = newestEpoch()
			return epoch > 0
		})
		var leader *haNode
		for _, n := range nodes {
			if strings.HasPrefix(holder, n.name+"#") || holder == n.name {
				leader = n
			}
		}
		if leader == nil {
			t.Fatalf("the leader %q is none of the daemons", holder)
		}
		la := loadAvg()
		killed := time.Now()
		leader.d.Kill()
		var took time.Duration
		for {
			e, h := newestEpoch()
			if e > epoch {
				took = time.Since(killed)
				holder = h
				break
			}
			if time.Since(killed) > 2*time.Minute {
				t.Fatalf("kill %d: no new epoch 2 minutes after kill -9 of %s", k+1, leader.name)
			}
			time.Sleep(20 * time.Millisecond)
		}
		times = append(times, took)
		logf("kill %d: kill -9 %s (epoch %d), epoch %d by %s after %.2f s (load average %s)", k+1, leader.name, epoch, epoch+1, holder, took.Seconds(), la)
		r0 := time.Now()
		startNode(leader)
		logf("kill %d: %s restarted, /healthz after %.2f s", k+1, leader.name, time.Since(r0).Seconds())
		time.Sleep(*haSettle)
	}
	fcancel()
	bg.Wait()
	if len(times) > 0 {
		var sum, worst time.Duration
		for _, d := range times {
			sum += d
			worst = max(worst, d)
		}
		logf("failover: %d kills, mean %.2f s, worst %.2f s [target <= 12 s]; during them %d batches acknowledged, %d retried on the other daemon, %d failed on both, %d answered duplicate",
			len(times), (sum / time.Duration(len(times))).Seconds(), worst.Seconds(), fi.acked.Load(), fi.retried.Load(), fi.failed.Load(), fi.dups.Load())
	}

	// 4. Every acknowledged sample in PostgreSQL.
	type key struct {
		host, plugin string
		us           int64
	}
	want := map[key]bool{}
	acks.mu.Lock()
	for _, b := range acks.batches {
		for i := range b.n {
			want[key{hosts[b.host].Name, plugins[i%len(plugins)], b.us + int64(i)}] = true
		}
	}
	nBatches := len(acks.batches)
	acks.mu.Unlock()
	total := len(want)
	rows, err := conn.Query(ctx, `SELECT se.host, se.plugin, sa.ts FROM samples sa JOIN series se ON se.id = sa.series`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k key
		var ts float64
		if err := rows.Scan(&k.host, &k.plugin, &ts); err != nil {
			t.Fatal(err)
		}
		k.us = int64(math.Round(ts * 1e6))
		delete(want, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	logf("acknowledged samples: %d in %d batches, %d missing from PostgreSQL [target 0]", total, nBatches, len(want))
	if len(want) > 0 {
		var ex bytes.Buffer
		n := 0
		for k := range want {
			if n++; n > 10 {
				break
			}
			fmt.Fprintf(&ex, "  %s %s %.6f\n", k.host, k.plugin, float64(k.us)/1e6)
		}
		t.Errorf("%d acknowledged samples missing from PostgreSQL, e.g.:\n%s", len(want), ex.String())
	}
	for _, n := range nodes {
		if errs := strings.Count(n.d.Stderr(), "[ERROR]"); errs > 0 {
			logf("%s logged %d errors since its last start, first: %s", n.name, errs, firstLine(n.d.Stderr(), "[ERROR]"))
		}
	}
}

// runOnce posts one batch per host.
func (ti *trackedIngest) runOnce(ctx context.Context, bases func() []string, hosts []fleetHost, conns, batch int, seq *uint64Counter, log *ackLog) {
	var wg sync.WaitGroup
	per := (len(hosts) + conns - 1) / conns
	for c := 0; c*per < len(hosts); c++ {
		part := hosts[c*per : min(len(hosts), (c+1)*per)]
		off := c * per
		wg.Go(func() {
			client := newHTTPClient(1)
			bs := bases()
			body := make([]byte, 0, 1024*batch)
			for i := range part {
				h := &part[i]
				now := time.Now()
				us := now.UnixMicro()
				body = appendBatch(body[:0], batch, float64(us)/1e6, seq.add(uint64(batch)), h.NonOK)
				status, _, _, err := postBatch(ctx, client, bs[(off+i)%len(bs)], h, now, body)
				if err == nil && status == http.StatusOK {
					ti.acked.Add(1)
					log.add(ackedBatch{host: off + i, us: us, n: batch})
				} else {
					ti.failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
}

// cpuNote is each daemon's CPU since its cpuAt, in % of one core.
func cpuNote(nodes []*haNode, cpu func(*haNode) time.Duration, secs float64) string {
	var out []string
	for _, n := range nodes {
		out = append(out, fmt.Sprintf("%s %.0f%%", n.name, 100*(cpu(n)-n.cpuAt).Seconds()/secs))
	}
	return strings.Join(out, ", ")
}

// haProc is an `hbd serve` of the scenario. Unlike testutil.StartDaemon
// it waits minutes for /healthz: a daemon restarted under this load, with
// 10,000 hosts to load from PostgreSQL, takes longer than 20 s.
type haProc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	stderr testutil.Buffer
}

func startHAProc(t *testing.T, bin, dir, base string) *haProc {
	t.Helper()
	p := &haProc{done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "-config", filepath.Join(dir, "hbd.yaml"))
	p.cmd.Dir = dir
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Kill)
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("hbd exited during start: %s", p.Stderr())
		default:
		}
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("hbd did not answer /healthz in 5 minutes: %s", p.Stderr())
	return nil
}

// Kill sends SIGKILL and waits for the process to end.
func (p *haProc) Kill() {
	p.cmd.Process.Kill()
	<-p.done
}

func (p *haProc) Stderr() string { return p.stderr.String() }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func firstLine(s, with string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, with) {
			return l
		}
	}
	return ""
}
