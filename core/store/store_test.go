package store

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func open(t *testing.T, dir string, history int) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, Options{SampleHistory: history})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sample(plugin string, ts float64, kv ...any) PluginSample {
	ps := PluginSample{Plugin: plugin, Sample: Sample{Timestamp: ts}}
	for i := 0; i < len(kv); i += 2 {
		ps.Paths = append(ps.Paths, kv[i].(string))
		ps.Values = append(ps.Values, kv[i+1].(float64))
	}
	return ps
}

func TestLatestIsNewestFirstAndBounded(t *testing.T) {
	forBackends(t, testLatestIsNewestFirstAndBounded)
}

func testLatestIsNewestFirstAndBounded(t *testing.T, be backend) {
	s := be.openAt(t, be.place(t), 5)
	ctx := context.Background()
	for i := 1; i <= 8; i++ {
		if err := s.AppendSamples(ctx, "web01", []PluginSample{sample("cpu_monitor", float64(i), "cpu_percent", float64(i*10))}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Latest("web01", "cpu_monitor", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0].Timestamp != 8 || got[4].Timestamp != 4 || got[0].Values[0] != 80 {
		t.Fatalf("got %+v", got)
	}
	if _, err := s.Latest("web01", "nope", 1); err != ErrNotFound {
		t.Fatalf("missing plugin: %v", err)
	}
}

func TestRingWidensForNewPaths(t *testing.T) { forBackends(t, testRingWidensForNewPaths) }

func testRingWidensForNewPaths(t *testing.T, be backend) {
	s := be.openAt(t, be.place(t), 10)
	ctx := context.Background()
	s.AppendSamples(ctx, "h", []PluginSample{sample("disk_monitor", 1, "/.percent", 10.0)})
	s.AppendSamples(ctx, "h", []PluginSample{sample("disk_monitor", 2, "/.percent", 11.0, "/home.percent", 50.0)})
	got, _ := s.Latest("h", "disk_monitor", 2)
	if len(got[0].Paths) != 2 || len(got[1].Paths) != 1 || got[1].Paths[0] != "/.percent" || got[1].Values[0] != 10 {
		t.Fatalf("got %+v", got)
	}
}

func TestRestartReloadsRingsAndHistory(t *testing.T) {
	forBackends(t, testRestartReloadsRingsAndHistory)
}

func testRestartReloadsRingsAndHistory(t *testing.T, be backend) {
	dir := be.place(t)
	ctx := context.Background()
	s, err := be.open(ctx, dir, Options{SampleHistory: 3})
	if err != nil {
		t.Fatal(err)
	}
	s.EnsureHost(ctx, "web01", true)
	for i := 1; i <= 6; i++ {
		s.AppendSamples(ctx, "web01", []PluginSample{sample("memory_monitor", float64(i), "percent", float64(i))})
	}
	s.Journal("web01", "web01 ipv6 DOWN")
	s.Close()

	s2 := be.openAt(t, dir, 3)
	got, _ := s2.Latest("web01", "memory_monitor", 10)
	if len(got) != 3 || got[0].Timestamp != 6 {
		t.Fatalf("ring after restart: %+v", got)
	}
	hist, err := s2.History(ctx, "web01", "memory_monitor", 2, 5, 100)
	if err != nil || len(hist) != 4 || hist[0].Timestamp != 5 {
		t.Fatalf("history: %v %+v", err, hist)
	}
	h, ok := s2.Host("web01")
	if !ok || !h.Dyn {
		t.Fatalf("host after restart: %+v", h)
	}
	msgs, _ := s2.Messages(ctx, MessageQuery{Host: "web01"})
	if len(msgs) != 2 || msgs[0].Msg != "web01 ipv6 DOWN" || msgs[1].Msg != "web01 registered (dynamic)" {
		t.Fatalf("journal: %+v", msgs)
	}
}

func TestResentSampleStoredOnce(t *testing.T) { forBackends(t, testResentSampleStoredOnce) }

func testResentSampleStoredOnce(t *testing.T, be backend) {
	s := be.openAt(t, be.place(t), 10)
	ctx := context.Background()
	b := []PluginSample{sample("cpu_monitor", 42, "cpu_percent", 1.0)}
	s.AppendSamples(ctx, "h", b)
	s.AppendSamples(ctx, "h", b)
	hist, _ := s.History(ctx, "h", "cpu_monitor", 0, math.MaxFloat64, 10)
	if len(hist) != 1 {
		t.Fatalf("resent sample stored %d times", len(hist))
	}
}

func TestMessagesPaging(t *testing.T) { forBackends(t, testMessagesPaging) }

func testMessagesPaging(t *testing.T, be backend) {
	s := be.openAt(t, be.place(t), 10)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if err := s.JournalSync(ctx, fmt.Sprintf("h%d", i%2), fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	all, _ := s.Messages(ctx, MessageQuery{Limit: 2})
	if len(all) != 2 || all[0].Msg != "m4" {
		t.Fatalf("%+v", all)
	}
	older, _ := s.Messages(ctx, MessageQuery{Limit: 10, Before: all[1].Time})
	if len(older) != 3 || older[0].Msg != "m2" {
		t.Fatalf("before: %+v", older)
	}
	h1, _ := s.Messages(ctx, MessageQuery{Host: "h1"})
	if len(h1) != 2 {
		t.Fatalf("host filter: %+v", h1)
	}
	none, _ := s.Messages(ctx, MessageQuery{Hosts: []string{}})
	if len(none) != 0 {
		t.Fatal("empty visible set must return nothing")
	}
}

func TestTrimDropsOldRows(t *testing.T) { forBackends(t, testTrimDropsOldRows) }

func testTrimDropsOldRows(t *testing.T, be backend) {
	s := be.openAt(t, be.place(t), 10)
	ctx := context.Background()
	old := float64(time.Now().Add(-48 * time.Hour).Unix())
	s.AppendSamples(ctx, "h", []PluginSample{sample("p", old, "a", 1.0), sample("p", float64(time.Now().Unix()), "a", 2.0)})
	n, err := s.Trim(ctx, time.Now().Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("trim: %d %v", n, err)
	}
	hist, _ := s.History(ctx, "h", "p", 0, math.MaxFloat64, 10)
	if len(hist) != 1 || hist[0].Values[0] != 2 {
		t.Fatalf("%+v", hist)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(context.Background(), "/nonexistent/dir", Options{}); err == nil || !strings.Contains(err.Error(), "data_dir /nonexistent/dir") {
		t.Fatalf("missing dir: %v", err)
	}
	dir := t.TempDir()
	garbage := []byte(strings.Repeat("not a database ", 400))
	os.WriteFile(filepath.Join(dir, FileName), garbage, 0o600)
	_, err := Open(context.Background(), dir, Options{})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, FileName)) {
		t.Fatalf("corrupt file: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, FileName))
	if string(after) != string(garbage) {
		t.Fatal("corrupt database file was modified")
	}
}

// TestKill9KeepsAcknowledgedSamples runs a child process that appends
// samples and prints an ack line after each commit, kills it with SIGKILL
// mid-stream, and checks that every acknowledged sample is in the database.
func TestKill9KeepsAcknowledgedSamples(t *testing.T) {
	if place := os.Getenv("HBD_STORE_CHILD"); place != "" {
		be := sqliteBackend
		if os.Getenv("HBD_STORE_CHILD_BACKEND") == DriverPostgres {
			be = postgresBackend
		}
		childWriter(be, place)
		return
	}
	forBackends(t, testKill9KeepsAcknowledgedSamples)
}

func testKill9KeepsAcknowledgedSamples(t *testing.T, be backend) {
	place := be.place(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9KeepsAcknowledgedSamples$")
	cmd.Env = append(os.Environ(), "HBD_STORE_CHILD="+place, "HBD_STORE_CHILD_BACKEND="+be.name)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	acked := 0
	for sc.Scan() {
		if n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "ack ")); err == nil {
			acked = n
			if acked >= 300 {
				break
			}
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if acked < 300 {
		t.Fatalf("child acknowledged only %d samples", acked)
	}
	s := be.openAt(t, place, 10)
	hist, err := s.History(context.Background(), "web01", "cpu_monitor", 0, math.MaxFloat64, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[float64]bool{}
	for _, h := range hist {
		seen[h.Timestamp] = true
	}
	for i := 1; i <= acked; i++ {
		if !seen[float64(i)] {
			t.Fatalf("acknowledged sample %d lost after kill -9 (%d stored)", i, len(hist))
		}
	}
	t.Logf("%d acknowledged, %d stored after SIGKILL", acked, len(hist))
}

func childWriter(be backend, place string) {
	s, err := be.open(context.Background(), place, Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	for i := 1; ; i++ {
		if err := s.AppendSamples(context.Background(), "web01", []PluginSample{sample("cpu_monitor", float64(i), "cpu_percent", float64(i))}); err != nil {
			fmt.Println("append:", err)
			os.Exit(2)
		}
		fmt.Printf("ack %d\n", i)
	}
}

func testResentSampleNotDuplicatedInMemory(t *testing.T, be backend) {
	s := be.openAt(t, be.place(t), 10)
	ctx := context.Background()
	b := []PluginSample{sample("cpu_monitor", 42, "cpu_percent", 1.0)}
	for i := 0; i < 3; i++ {
		s.AppendSamples(ctx, "h", b)
	}
	if got, _ := s.Latest("h", "cpu_monitor", 10); len(got) != 1 {
		t.Fatalf("replayed sample held %d times in memory", len(got))
	}
}

func TestRingColumnsStayBoundedWhenKeysKeepChanging(t *testing.T) {
	forBackends(t, testRingColumnsStayBoundedWhenKeysKeepChanging)
}

func testRingColumnsStayBoundedWhenKeysKeepChanging(t *testing.T, be backend) {
	r := newRing(5)
	for i := 0; i < 200; i++ {
		paths := make([]string, 50)
		values := make([]float64, 50)
		for j := range paths {
			paths[j] = fmt.Sprintf("k%05d", i*50+j)
		}
		r.add(float64(i), paths, values)
	}
	if len(r.paths) > MaxRingColumns {
		t.Fatalf("ring has %d columns, bound is %d", len(r.paths), MaxRingColumns)
	}
	got := r.latest(5)
	if len(got) != 5 || got[0].Timestamp != 199 || got[0].Paths[0] != "k09950" || len(got[0].Paths) != 50 {
		t.Fatalf("newest samples lost: %d samples, first %+v", len(got), got[0].Paths[:1])
	}
}

func TestTooManySeriesRefusedAndTrimFreesThem(t *testing.T) {
	forBackends(t, testTooManySeriesRefusedAndTrimFreesThem)
}

func testTooManySeriesRefusedAndTrimFreesThem(t *testing.T, be backend) {
	s := be.openAt(t, be.place(t), 10)
	ctx := context.Background()
	old := float64(time.Now().Add(-48 * time.Hour).Unix())
	for i := 0; i < MaxSeriesPerPlugin; i++ {
		if err := s.AppendSamples(ctx, "h", []PluginSample{sample("exec_x", old, fmt.Sprintf("k%d", i), 1.0)}); err != nil {
			t.Fatal(err)
		}
	}
	err := s.AppendSamples(ctx, "h", []PluginSample{sample("exec_x", old+1, "one_more", 1.0)})
	if !errors.Is(err, ErrTooManySeries) {
		t.Fatalf("want ErrTooManySeries, got %v", err)
	}
	if err := s.AppendSamples(ctx, "h", []PluginSample{sample("other", old, "k0", 1.0)}); err != nil {
		t.Fatalf("another plugin must not be limited: %v", err)
	}
	if _, err := s.Trim(ctx, time.Now().Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendSamples(ctx, "h", []PluginSample{sample("exec_x", float64(time.Now().Unix()), "one_more", 1.0)}); err != nil {
		t.Fatalf("after trimming the old sets: %v", err)
	}
}

func TestUndecodableRowDoesNotStopStart(t *testing.T) {
	forBackends(t, testUndecodableRowDoesNotStopStart)
}

func testUndecodableRowDoesNotStopStart(t *testing.T, be backend) {
	dir := be.place(t)
	ctx := context.Background()
	s, err := be.open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.AppendSamples(ctx, "h", []PluginSample{sample("p", 1, "a", 1.0)})
	// A row whose blob does not match its series' paths, as a damaged file
	// or an older bug could leave behind.
	err = s.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`INSERT INTO series (host, plugin, paths) VALUES ('h', 'p', ?)`, "x\ny"); err != nil {
			return err
		}
		var id int64
		if err := tx.QueryRow(`SELECT id FROM series WHERE host = 'h' AND plugin = 'p' AND paths = ?`, "x\ny").Scan(&id); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO samples (series, ts, vals) VALUES (?, 2, ?)`, id, make([]byte, 8))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := be.openAt(t, dir, 10)
	if got, _ := s2.Latest("h", "p", 10); len(got) != 1 || got[0].Timestamp != 1 {
		t.Fatalf("good sample not loaded: %+v", got)
	}
	if hist, err := s2.History(ctx, "h", "p", 0, math.MaxFloat64, 10); err != nil || len(hist) != 1 {
		t.Fatalf("history: %v %+v", err, hist)
	}
}

// TestEnsureHostJournalsASelfRegistrationOnce: the store is the one place
// a dynamic host's registration is recorded, once, whichever path heard
// it first; a configured host is not journaled.
func TestEnsureHostJournalsASelfRegistrationOnce(t *testing.T) {
	forBackends(t, testEnsureHostJournalsASelfRegistrationOnce)
}

func testEnsureHostJournalsASelfRegistrationOnce(t *testing.T, be backend) {
	s := be.openAt(t, be.place(t), 10)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		isNew, err := s.EnsureHost(ctx, "dyn01", true)
		if err != nil || isNew != (i == 0) {
			t.Fatalf("call %d: new=%v err=%v", i, isNew, err)
		}
	}
	if isNew, err := s.EnsureHost(ctx, "web01", false); err != nil || !isNew {
		t.Fatalf("configured host: new=%v err=%v", isNew, err)
	}
	if err := s.JournalSync(ctx, "", "sync point"); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Messages(ctx, MessageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		got = append(got, m.Host+": "+m.Msg)
	}
	if len(got) != 2 || got[1] != "dyn01: dyn01 registered (dynamic)" {
		t.Fatalf("journal %q, want the sync point and one registration of dyn01", got)
	}
}

// TestHostNamesListsEveryReportedHostSortedAndSurvivesReopen: HostNames
// (what dispatch adds to the configured hosts) holds every host that
// reported, sorted, also after a restart.
func TestHostNamesListsEveryReportedHostSortedAndSurvivesReopen(t *testing.T) {
	forBackends(t, testHostNamesListsEveryReportedHostSortedAndSurvivesReopen)
}

func testHostNamesListsEveryReportedHostSortedAndSurvivesReopen(t *testing.T, be backend) {
	dir := be.place(t)
	s := be.openAt(t, dir, 10)
	ctx := context.Background()
	if got := s.HostNames(); len(got) != 0 {
		t.Fatalf("empty store: %q", got)
	}
	for _, h := range []string{"web02", "db01", "web01"} {
		if _, err := s.EnsureHost(ctx, h, h == "db01"); err != nil {
			t.Fatal(err)
		}
	}
	want := "db01,web01,web02"
	if got := strings.Join(s.HostNames(), ","); got != want {
		t.Fatalf("HostNames %q, want %q", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = be.openAt(t, dir, 10)
	if got := strings.Join(s.HostNames(), ","); got != want {
		t.Fatalf("after reopen: HostNames %q, want %q", got, want)
	}
}

// TestLastSeenSurvivesRestart: a host's last_seen is written with its
// first batch and then at most every lastSeenEvery; memory follows every
// batch, and a restart reads back a time no older than that.
func TestLastSeenSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), dir, Options{SampleHistory: 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.EnsureHost(ctx, "web01", false); err != nil {
		t.Fatal(err)
	}
	put := func(ts float64) {
		t.Helper()
		if err := s.AppendSamples(ctx, "web01", []PluginSample{{Plugin: "p",
			Sample: Sample{Timestamp: ts, Paths: []string{"v"}, Values: []float64{ts}}}}); err != nil {
			t.Fatal(err)
		}
	}
	put(1)
	first, _ := s.Host("web01")
	put(2)
	second, _ := s.Host("web01")
	if second.LastSeen < first.LastSeen {
		t.Fatalf("memory last_seen went back: %v then %v", first.LastSeen, second.LastSeen)
	}
	s.Close()
	s, err = Open(ctx, dir, Options{SampleHistory: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, ok := s.Host("web01")
	if !ok || got.LastSeen < first.LastSeen || got.LastSeen > second.LastSeen {
		t.Fatalf("after restart last_seen %v (known %v), want within [%v, %v]", got.LastSeen, ok, first.LastSeen, second.LastSeen)
	}
	if l, err := s.Latest("web01", "p", 0); err != nil || len(l) != 2 {
		t.Fatalf("samples after restart: %v %v", l, err)
	}
}
