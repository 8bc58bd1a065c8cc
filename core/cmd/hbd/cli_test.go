package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/hbdmon/hbd/core/agent"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
)

func hbd(args []string, stdin string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// Off a terminal, hash-password reads the first line of stdin.
func TestHashPasswordReadsStdin(t *testing.T) {
	code, out, errs := hbd([]string{"hash-password"}, "correct horse\n")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(out)), []byte("correct horse")); err != nil {
		t.Errorf("hash %q does not match the password: %v", out, err)
	}
	if strings.Contains(errs, "Password:") {
		t.Errorf("prompted off a terminal: %q", errs)
	}
	for _, in := range []string{"", "\n", strings.Repeat("x", 73) + "\n"} {
		if code, _, _ := hbd([]string{"hash-password"}, in); code != 1 {
			t.Errorf("password %q: exit %d, want 1", in, code)
		}
	}
}

// On a terminal (a pseudo-terminal from script(1)), hash-password asks
// twice with echo off: the password never appears in the terminal's
// output, only the prompts and the hash.
func TestHashPasswordPromptsWithoutEcho(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) (util-linux) is not installed: no pseudo-terminal to test with")
	}
	bin := testutil.Build(t, "./core/cmd/hbd")
	cmd := exec.Command("script", "-qfec", bin+" hash-password", "/dev/null")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out testutil.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Each line is typed only once its prompt shows, and echo is off
	// before a prompt is printed.
	testutil.Eventually(t, "the first prompt", 20*time.Second, func() bool { return strings.Contains(out.String(), "Password: ") })
	fmt.Fprint(in, "tty-secret-1\n")
	testutil.Eventually(t, "the second prompt", 20*time.Second, func() bool { return strings.Contains(out.String(), "Repeat: ") })
	fmt.Fprint(in, "tty-secret-1\n")
	testutil.Eventually(t, "the hash", 20*time.Second, func() bool { return strings.Contains(out.String(), "$2a$") })
	in.Close()
	cmd.Wait()
	got := out.String()
	if strings.Contains(got, "tty-secret-1") {
		t.Fatalf("the password was echoed:\n%q", got)
	}
	hash := regexp.MustCompile(`\$2a\$\S+`).FindString(got)
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("tty-secret-1")); err != nil {
		t.Errorf("hash %q does not match: %v", hash, err)
	}
}

// check-config refuses what serve would: a missing data_dir and a notify
// name that is no channel (of the file or the database).
func TestCheckConfigRefusesWhatServeRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(dataDir, notify string) string {
		p := filepath.Join(dir, "hbd.yaml")
		body := fmt.Sprintf("data_dir: %s\nwatchhosts:\n  web01:\n    key: %q\n%s", dataDir, testutil.Key, notify)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := write(filepath.Join(dir, "missing"), "")
	if code, _, errs := hbd([]string{"check-config", "-config", p}, ""); code != 1 || !strings.Contains(errs, "hbd.yaml: data_dir: "+filepath.Join(dir, "missing")+": no such file or directory") {
		t.Errorf("missing data_dir: exit %d, %q", code, errs)
	}
	p = write(dir, "    notify: [ops]\n")
	if code, _, errs := hbd([]string{"check-config", "-config", p}, ""); code != 1 || !strings.Contains(errs, `hbd.yaml: watchhosts.web01.notify: no channel named "ops"`) {
		t.Errorf("unknown notify channel: exit %d, %q", code, errs)
	}
	p = write(dir, "")
	if code, out, errs := hbd([]string{"check-config", "-config", p}, ""); code != 0 || !strings.Contains(out, "ok (1 watched hosts") {
		t.Errorf("good file: exit %d, %q %q", code, out, errs)
	}
}

func TestInsertWatchhost(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"empty flow map", "data_dir: x\nwatchhosts: {}   # none yet\nthresholds: {}\n",
			"data_dir: x\nwatchhosts:\n  web02:\n    key: \"K\"\n    timeout: 30s\nthresholds: {}\n"},
		{"block, four spaces", "watchhosts:\n    # the web tier\n    web01:\n        key: \"A\"\nusers: {}\n",
			"watchhosts:\n    web02:\n        key: \"K\"\n        timeout: 30s\n    # the web tier\n    web01:\n        key: \"A\"\nusers: {}\n"},
		{"absent", "data_dir: x", "data_dir: x\n\nwatchhosts:\n  web02:\n    key: \"K\"\n    timeout: 30s\n"},
	}
	for _, c := range cases {
		got, err := insertWatchhost(c.in, "web02", "K")
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v\nwant %q", c.name, got, err, c.want)
		}
	}
	if _, err := insertWatchhost("watchhosts: {web01: {key: A}}\n", "web02", "K"); err == nil {
		t.Errorf("a flow map with entries was edited")
	}
}

// add-host -write adds the host to a running daemon's file safely and
// reloads it; the printed hbc.yaml, used as is by a real agent, makes
// the host UP on the daemon.
func TestAddHostWriteReloadsAndTheAgentConnects(t *testing.T) {
	hbdBin := testutil.Build(t, "./core/cmd/hbd")
	hbcBin := testutil.Build(t, "./core/cmd/hbc")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o700)
	port, hbPort := testutil.FreePort(t), testutil.FreePort(t)
	conf := filepath.Join(dir, "hbd.yaml")
	orig := fmt.Sprintf("hbd_host: 127.0.0.1\nhbd_port: %d\nws_port: 0\nhb_port: %d\nhb_listen6: \"\"\ndata_dir: %s\nplugins_dir: %s\n# hosts\nwatchhosts: {}\n", port, hbPort, data, filepath.Join(dir, "plugins"))
	if err := os.WriteFile(conf, []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	d := testutil.StartDaemon(t, hbdBin, dir, port)

	code, out, errs := hbd([]string{"add-host", "-config", conf, "-write", "web02"}, "")
	if code != 0 {
		t.Fatalf("add-host -write: exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, fmt.Sprintf("asked hbd (pid %d) to reload", d.Cmd.Process.Pid)) {
		t.Errorf("add-host did not reload the daemon: %s", errs)
	}
	if b, _ := os.ReadFile(conf + ".bak"); string(b) != orig {
		t.Errorf("%s.bak is not the previous file: %q", conf, b)
	}
	if st, _ := os.Stat(conf); st.Mode().Perm() != 0o640 {
		t.Errorf("the edited file's mode is %v, want the original 0640", st.Mode().Perm())
	}
	cfg, err := config.Load(conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`(?m)^key: "([0-9a-f]{64})"$`).FindStringSubmatch(out)
	if key == nil || cfg.Watchhosts["web02"].Key.Reveal() != key[1] {
		t.Fatalf("the printed hbc.yaml's key is not the file's:\n%s", out)
	}
	d.WaitLog(t, "config reloaded", 20*time.Second)

	agentConf := filepath.Join(dir, "hbc.yaml")
	if err := os.WriteFile(agentConf, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := agent.LoadConfig(agentConf); err != nil {
		t.Fatalf("the printed hbc.yaml does not load: %v\n%s", err, out)
	}
	agentCmd := exec.Command(hbcBin, "-config", agentConf)
	agentCmd.Env = append(os.Environ(), "HBC_SPOOL_DIR="+filepath.Join(dir, "spool"), "HBC_HEARTBEAT_INTERVAL=1s")
	var agentLog testutil.Buffer
	agentCmd.Stderr = &agentLog
	if err := agentCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agentCmd.Process.Signal(syscall.SIGTERM); agentCmd.Wait() })
	testutil.Eventually(t, "web02 UP with samples on the daemon", 60*time.Second, func() bool {
		resp, err := http.Get(d.BaseURL + "/api/0/hosts")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var hosts []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		}
		json.NewDecoder(resp.Body).Decode(&hosts)
		for _, h := range hosts {
			if h.Name == "web02" && h.State == "UP" {
				return true
			}
		}
		return false
	})

	// A second add-host for the same name changes nothing.
	before, _ := os.ReadFile(conf)
	if code, _, errs := hbd([]string{"add-host", "-config", conf, "-write", "web02"}, ""); code != 1 || !strings.Contains(errs, "exists already") {
		t.Errorf("duplicate add-host: exit %d, %q", code, errs)
	}
	if after, _ := os.ReadFile(conf); !bytes.Equal(before, after) {
		t.Errorf("a refused add-host changed the file")
	}
}

// Without -write, add-host prints the entry and the agent's file and
// touches nothing.
func TestAddHostPrints(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "hbd.yaml")
	body := fmt.Sprintf("hbd_host: \"\"\nhbd_port: 50004\ndata_dir: %s\nwatchhosts: {}\n", dir)
	os.WriteFile(conf, []byte(body), 0o600)
	code, out, errs := hbd([]string{"add-host", "-config", conf, "-server", "hbd.example.net", "db01"}, "")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"  db01:\n    key: \"", "host: db01\n", `server_ipv4: "hbd.example.net:50003"`, `server_ipv6: "hbd.example.net:50003"`, "api_url: http://hbd.example.net:50004\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if b, _ := os.ReadFile(conf); string(b) != body {
		t.Errorf("add-host without -write changed the file")
	}
	if code, _, _ := hbd([]string{"add-host", "-config", conf, "Bad Name"}, ""); code != 1 {
		t.Errorf("a bad host name: exit %d, want 1", code)
	}
}

// hbd backup copies the database of a running daemon's data_dir.
func TestBackupCommand(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.JournalSync(context.Background(), "web01", "in the backup"); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "hbd.yaml")
	os.WriteFile(conf, []byte("data_dir: "+dir+"\nwatchhosts: {}\n"), 0o600)
	out := filepath.Join(t.TempDir(), "copy.db")
	if code, stdout, errs := hbd([]string{"backup", "-config", conf, out}, ""); code != 0 || !strings.Contains(stdout, "backup of") {
		t.Fatalf("backup: exit %d, %q %q", code, stdout, errs)
	}
	if code, _, errs := hbd([]string{"backup", "-config", conf, out}, ""); code != 1 || !strings.Contains(errs, "exists") {
		t.Errorf("backup over an existing file: exit %d, %q", code, errs)
	}
	// Restore as docs/INSTALL.md says: the copy becomes hbd.db of a data_dir.
	restored := t.TempDir()
	b, _ := os.ReadFile(out)
	os.WriteFile(filepath.Join(restored, store.FileName), b, 0o600)
	rs, err := store.Open(context.Background(), restored, store.Options{})
	if err != nil {
		t.Fatalf("open the restored copy: %v", err)
	}
	defer rs.Close()
	msgs, err := rs.Messages(context.Background(), store.MessageQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range msgs {
		found = found || m.Msg == "in the backup"
	}
	if !found {
		t.Errorf("the restored database lacks the journal line: %+v", msgs)
	}
}
