package main

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/alert/record"
	"github.com/hbdmon/hbd/core/channels/channelrecord"
	"github.com/hbdmon/hbd/core/daemon"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// migratePassword is put in every DSN the tests pass: it must never show.
const migratePassword = "hunter2migrate"

// fillStore writes a SQLite store in dir through the store's API: a
// host's samples, the journal, an alert state, a silence and a user
// channel with a secret.
func fillStore(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.EnsureHost(ctx, "web01", false); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		ps := store.PluginSample{Plugin: "cpu_monitor", Sample: store.Sample{Timestamp: 1.7e9 + float64(i), Paths: []string{"cpu_percent"}, Values: []float64{float64(i)}}}
		if err := st.AppendSamples(ctx, "web01", []store.PluginSample{ps}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.JournalSync(ctx, "web01", "web01 ipv4 DOWN"); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveAlertStatesSync(ctx, []record.SavedState{{Host: "web01", Metric: "cpu_monitor.cpu_percent", Level: "WARNING", Since: 1.7e9, LastValue: 85, LastCheck: 1.7e9}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveSilence(ctx, record.Silence{ID: "s1", Host: "web01", Metric: "**", Created: 1, Starts: 1, Until: 2e9}); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1711234567, 0)
	if err := st.PutUserChannel(ctx, channelrecord.Channel{Name: "hook", Type: "webhook", Owner: "alice", MinLevel: "WARNING",
		Fields: map[string]string{"url": "https://example.com/h", "secret": "chan-s3cret"}, Source: channelrecord.SourceUser, Created: now, Updated: now}); err != nil {
		t.Fatal(err)
	}
}

// runBin runs the built hbd and returns its exit code and output.
func runBin(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode(), out.String(), errb.String()
	}
	t.Fatalf("hbd %v: %v (stderr %q)", args, err, errb.String())
	return 0, "", ""
}

// TestMigrateStoreCommand, end to end with the built binary: a store
// written through the API is copied into an empty PostgreSQL database
// (exit 0, a line per table, no secret printed), and a daemon's store on
// that database reads it back; a second run into the now filled database
// exits 1 naming a table and changes nothing. The config may instead name
// the PostgreSQL database itself, with -from naming the SQLite data_dir.
func TestMigrateStoreCommand(t *testing.T) {
	bin := testutil.Build(t, "./core/cmd/hbd")
	ctx := context.Background()
	dir := t.TempDir()
	fillStore(t, dir)
	conf := filepath.Join(dir, "hbd.yaml")
	os.WriteFile(conf, []byte("data_dir: "+dir+"\nwatchhosts: {}\n"), 0o600)
	dsn := pgtest.DSN(t) + " password=" + migratePassword

	code, out, errs := runBin(t, bin, "migrate-store", "-config", conf, "-to-dsn", dsn)
	if code != 0 {
		t.Fatalf("migrate-store: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	for _, want := range []string{filepath.Join(dir, store.FileName), "hosts", "samples", "50 rows", "journal", "alert_states", "alert_silences", "notification_channels", "total", "initial state", "leader_lease"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errs, migratePassword) || strings.Contains(out+errs, "chan-s3cret") {
		t.Errorf("a secret was printed:\n%s%s", out, errs)
	}

	pg, err := store.OpenPostgres(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hist, err := pg.History(ctx, "web01", "cpu_monitor", 0, math.MaxFloat64, 100)
	if err != nil || len(hist) != 50 || hist[0].Timestamp != 1.7e9+49 || hist[0].Values[0] != 49 {
		t.Errorf("samples in PostgreSQL: %d, %v", len(hist), err)
	}
	msgs, _ := pg.Messages(ctx, store.MessageQuery{Limit: 10})
	states, _ := pg.AlertStates(ctx)
	sils, _ := pg.Silences(ctx)
	chans, _ := pg.UserChannels(ctx)
	if len(msgs) != 1 || msgs[0].Msg != "web01 ipv4 DOWN" || len(states) != 1 || states[0].Level != "WARNING" ||
		len(sils) != 1 || sils[0].ID != "s1" || len(chans) != 1 || chans[0].Fields["secret"] != "chan-s3cret" {
		t.Errorf("copied: journal %+v, states %+v, silences %+v, channels %d", msgs, states, sils, len(chans))
	}
	pg.Close()

	code, out, errs = runBin(t, bin, "migrate-store", "-config", conf, "-to-dsn", dsn)
	if code != 1 || !strings.Contains(errs, "not empty") || !strings.Contains(errs, "table hosts") || strings.Contains(out+errs, migratePassword) {
		t.Errorf("second run: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	pg, err = store.OpenPostgres(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if hist, _ := pg.History(ctx, "web01", "cpu_monitor", 0, math.MaxFloat64, 1000); len(hist) != 50 {
		t.Errorf("after a refused run: %d samples", len(hist))
	}
	pg.Close()

	// The new config names PostgreSQL (dsn_file); -from names the old
	// data_dir.
	haDir := t.TempDir()
	dsnFile := filepath.Join(haDir, "dsn")
	os.WriteFile(dsnFile, []byte(pgtest.DSN(t)+" password="+migratePassword+"\n"), 0o600)
	haConf := filepath.Join(haDir, "hbd.yaml")
	os.WriteFile(haConf, []byte("data_dir: "+haDir+"\nstore: {driver: postgres, dsn_file: "+dsnFile+"}\nwatchhosts: {}\n"), 0o600)
	code, out, errs = runBin(t, bin, "migrate-store", "-config", haConf, "-from", dir)
	if code != 0 || !strings.Contains(out, "50 rows") || strings.Contains(out+errs, migratePassword) {
		t.Errorf("from the PostgreSQL config: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
}

// Bad input ends with a clear message and a non-zero exit, never a crash:
// a missing data dir, no target named, a DSN that does not connect (its
// password not shown), a daemon running on the data dir.
func TestMigrateStoreCommandRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	fillStore(t, dir)
	conf := filepath.Join(dir, "hbd.yaml")
	os.WriteFile(conf, []byte("data_dir: "+dir+"\nwatchhosts: {}\n"), 0o600)
	missing := filepath.Join(t.TempDir(), "gone")
	dead := "host=127.0.0.1 port=1 dbname=hbd user=hbd password=" + migratePassword + " connect_timeout=3"

	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing data dir", []string{"-config", conf, "-from", missing, "-to-dsn", dead}, 1, "data_dir " + missing},
		{"no target", []string{"-config", conf}, 2, "-to-dsn"},
		{"bad DSN", []string{"-config", conf, "-to-dsn", "postgres://hbd:" + migratePassword + "@db:notaport/hbd"}, 1, "not a valid PostgreSQL connection string"},
		{"DSN that does not connect", []string{"-config", conf, "-to-dsn", dead}, 1, "cannot connect"},
		{"an argument", []string{"-config", conf, "-to-dsn", dead, "extra"}, 2, "usage: hbd migrate-store"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := hbd(append([]string{"migrate-store"}, c.args...), "")
			if code != c.code || !strings.Contains(errs, c.want) || strings.Contains(out+errs, migratePassword) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errs, c.code, c.want)
			}
		})
	}

	t.Run("daemon running", func(t *testing.T) {
		pidFile := filepath.Join(dir, daemon.PIDFile)
		os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
		defer os.Remove(pidFile)
		code, _, errs := hbd([]string{"migrate-store", "-config", conf, "-to-dsn", pgtest.DSN(t)}, "")
		if code != 1 || !strings.Contains(errs, "is running") || !strings.Contains(errs, "stop it first") {
			t.Errorf("exit %d, stderr %q", code, errs)
		}
	})
}
