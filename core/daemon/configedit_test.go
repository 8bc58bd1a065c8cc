package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/auth/authtest"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/daemon"
	"github.com/hbdmon/hbd/core/testutil"
)

// enrollSecret is a secret of the editor tests' config: it must never
// appear in an answer.
const enrollSecret = "enroll-secret-0123456789abcdef-0123456789"

// editorDaemon starts a real daemon (in process) whose config has an
// admin and a user who is not one, and serves its API.
func editorDaemon(t *testing.T, users bool) (*daemon.Daemon, string, string) {
	t.Helper()
	dir := t.TempDir()
	extra := "enroll_key: \"" + enrollSecret + "\"\nalerting:\n  renotify: 1h\n"
	if users {
		extra += "users:\n  admin:\n    password_hash: \"" + authtest.Hash("admin") + "\"\n    admin: true\n  other:\n    password_hash: \"" + authtest.Hash("other") + "\"\n"
	}
	writeConfig(t, dir, testutil.FreePort(t), extra)
	path := filepath.Join(dir, "hbd.yaml")
	wd, _ := os.Getwd()
	os.Chdir(dir)
	t.Cleanup(func() { os.Chdir(wd) })
	d, err := daemon.New(context.Background(), path, daemon.Options{Environ: []string{}, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	srv := httptest.NewServer(d.API.Echo)
	t.Cleanup(srv.Close)
	return d, srv.URL, path
}

// call sends a JSON request with a bearer token and decodes the answer
// into out (when not nil); it returns the status and the raw body.
func call(t *testing.T, method, url, token string, body any, out any) (int, string) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(buf.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, buf.String())
		}
	}
	return resp.StatusCode, buf.String()
}

func login(t *testing.T, base, user string) string {
	t.Helper()
	var out struct{ Token string }
	if code, body := call(t, http.MethodPost, base+"/api/0/auth/login", "", map[string]string{"username": user, "password": authtest.Password(user)}, &out); code != http.StatusOK {
		t.Fatalf("login %s: %d %s", user, code, body)
	}
	return out.Token
}

type configAnswer struct {
	Path, Version, Text string
	Saved, Reloaded     bool
}

type checkAnswer struct {
	Valid  bool
	Errors []struct {
		Line    int
		Key     string
		Message string
	}
	Diff           string
	ChangedSecrets []string `json:"changed_secrets"`
	Stale          bool
}

// lineOf returns the 1-based line of text holding s.
func lineOf(text, s string) int {
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	return 0
}

func TestConfigEditorMasksChecksAndSaves(t *testing.T) {
	d, base, path := editorDaemon(t, true)
	admin, other := login(t, base, "admin"), login(t, base, "other")

	// Only administrators read the file.
	if code, body := call(t, http.MethodGet, base+"/api/0/config", other, nil, nil); code != http.StatusForbidden || !strings.Contains(body, `"error"`) {
		t.Fatalf("a user who is not an admin: %d %s", code, body)
	}
	if code, _ := call(t, http.MethodPut, base+"/api/0/config", other, map[string]string{"text": "x", "version": "y"}, nil); code != http.StatusForbidden {
		t.Fatalf("a user who is not an admin may save: %d", code)
	}
	if code, _ := call(t, http.MethodGet, base+"/api/0/config", "", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d", code)
	}

	var cur configAnswer
	code, raw := call(t, http.MethodGet, base+"/api/0/config", admin, nil, &cur)
	if code != http.StatusOK {
		t.Fatalf("GET: %d %s", code, raw)
	}
	for _, secret := range []string{enrollSecret, testutil.Key, authtest.Hash("admin")} {
		if strings.Contains(raw, secret) {
			t.Fatalf("GET /api/0/config shows a secret: %s", raw)
		}
	}
	if !strings.Contains(cur.Text, `enroll_key: "•••"`) || !strings.Contains(cur.Text, `key: "•••"`) || cur.Path != path || cur.Version == "" {
		t.Fatalf("GET: %+v", cur)
	}

	// An invalid value: refused with its line and key, by check and save.
	bad := strings.Replace(cur.Text, "renotify: 1h", "renotify: soon", 1)
	var chk checkAnswer
	call(t, http.MethodPost, base+"/api/0/config/check", admin, map[string]string{"text": bad, "version": cur.Version}, &chk)
	if chk.Valid || len(chk.Errors) != 1 || chk.Errors[0].Key != "alerting.renotify" || chk.Errors[0].Line != lineOf(bad, "renotify:") {
		t.Fatalf("check of an invalid duration: %+v", chk)
	}
	if !strings.Contains(chk.Diff, "-  renotify: 1h\n+  renotify: soon") {
		t.Errorf("check diff:\n%s", chk.Diff)
	}
	before, _ := os.ReadFile(path)
	code, body := call(t, http.MethodPut, base+"/api/0/config", admin, map[string]string{"text": bad, "version": cur.Version}, nil)
	var refusal struct {
		Error string
		Line  int
		Key   string
	}
	json.Unmarshal([]byte(body), &refusal)
	if code != http.StatusUnprocessableEntity || refusal.Key != "alerting.renotify" || refusal.Line != lineOf(bad, "renotify:") {
		t.Fatalf("save of an invalid duration: %d %s", code, body)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("a refused save changed the file")
	}

	// The edit that would turn authentication off (no users) is refused as
	// a reload would refuse it.
	usersAt := strings.Index(cur.Text, "users:")
	noUsers := cur.Text[:usersAt]
	call(t, http.MethodPost, base+"/api/0/config/check", admin, map[string]string{"text": noUsers}, &chk)
	if chk.Valid || len(chk.Errors) != 1 || chk.Errors[0].Key != "users" || !strings.Contains(chk.Errors[0].Message, "authentication off") {
		t.Fatalf("check of a text without users: %+v", chk)
	}
	if code, body := call(t, http.MethodPut, base+"/api/0/config", admin, map[string]string{"text": noUsers, "version": cur.Version}, nil); code != http.StatusUnprocessableEntity {
		t.Fatalf("save of a text without users: %d %s", code, body)
	}
	// So is an empty file.
	call(t, http.MethodPost, base+"/api/0/config/check", admin, map[string]string{"text": ""}, &chk)
	if chk.Valid {
		t.Fatal("an empty file passes the check")
	}

	// A stale version is refused.
	if code, body := call(t, http.MethodPut, base+"/api/0/config", admin, map[string]string{"text": cur.Text, "version": "0123"}, nil); code != http.StatusConflict || !strings.Contains(body, "changed since") {
		t.Fatalf("stale save: %d %s", code, body)
	}

	// A good edit: renotify changes, a host is added, web01's key is kept
	// as "•••", the enroll key gets a new value.
	const newEnroll = "enroll-NEW-abcdefghijklmnopqrstuvwxyz0123"
	newKey := strings.Repeat("n", config.MinKeyBytes)
	good := strings.Replace(cur.Text, "renotify: 1h", "renotify: 2h", 1)
	good = strings.Replace(good, `enroll_key: "•••"`, `enroll_key: "`+newEnroll+`"`, 1)
	good = strings.Replace(good, "watchhosts:\n", "watchhosts:\n  web02:\n    key: \""+newKey+"\"\n", 1)
	call(t, http.MethodPost, base+"/api/0/config/check", admin, map[string]string{"text": good, "version": cur.Version}, &chk)
	if !chk.Valid || chk.Stale || len(chk.ChangedSecrets) != 2 {
		t.Fatalf("check of a good edit: %+v", chk)
	}
	if strings.Contains(chk.Diff, newEnroll) || strings.Contains(chk.Diff, newKey) || strings.Contains(chk.Diff, enrollSecret) || !strings.Contains(chk.Diff, `+enroll_key: "••• (changed)"`) {
		t.Fatalf("check diff shows a secret or hides the change:\n%s", chk.Diff)
	}
	st0, _ := os.Stat(path)
	var saved configAnswer
	code, body = call(t, http.MethodPut, base+"/api/0/config", admin, map[string]string{"text": good, "version": cur.Version}, &saved)
	if code != http.StatusOK || !saved.Saved || !saved.Reloaded || saved.Version == cur.Version {
		t.Fatalf("save: %d %s", code, body)
	}
	if strings.Contains(body, newEnroll) || strings.Contains(body, testutil.Key) {
		t.Fatalf("the save's answer shows a secret: %s", body)
	}
	file, _ := os.ReadFile(path)
	if !strings.Contains(string(file), `key: "`+testutil.Key+`"`) || !strings.Contains(string(file), newEnroll) || !strings.Contains(string(file), "renotify: 2h") {
		t.Fatalf("saved file:\n%s", file)
	}
	if bak, _ := os.ReadFile(path + ".bak"); !bytes.Equal(bak, before) {
		t.Fatalf("hbd.yaml.bak is not the previous file:\n%s", bak)
	}
	if st, _ := os.Stat(path); st.Mode() != st0.Mode() {
		t.Errorf("file mode %v, was %v", st.Mode(), st0.Mode())
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".hbd.yaml.new-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// The reload happened: the new values are in force.
	cfg := d.Config()
	if cfg.Alerting.Renotify.String() != "2h0m0s" || cfg.EnrollKey.Reveal() != newEnroll || cfg.Watchhosts["web01"].Key.Reveal() != testutil.Key {
		t.Fatalf("config in force after the save: renotify %v", cfg.Alerting.Renotify)
	}
	var hosts []struct{ Name string }
	call(t, http.MethodGet, base+"/api/0/hosts", admin, nil, &hosts)
	found := false
	for _, h := range hosts {
		found = found || h.Name == "web02"
	}
	if !found {
		t.Fatalf("web02 is not served after the save: %+v", hosts)
	}
	// The edit is journaled with the user's name, and no secret.
	var msgs []struct{ Msg string }
	call(t, http.MethodGet, base+"/api/0/messages", admin, nil, &msgs)
	journaled := false
	for _, m := range msgs {
		if strings.Contains(m.Msg, "edited in the web UI by admin") {
			journaled = true
			if strings.Contains(m.Msg, newEnroll) {
				t.Errorf("journal shows a secret: %s", m.Msg)
			}
		}
	}
	if !journaled {
		t.Errorf("the edit is not journaled: %+v", msgs)
	}
	// The answer's version is the file's: saving it again changes nothing.
	var again configAnswer
	if code, body := call(t, http.MethodPut, base+"/api/0/config", admin, map[string]string{"text": saved.Text, "version": saved.Version}, &again); code != http.StatusOK || again.Saved {
		t.Fatalf("saving the unchanged text: %d %s", code, body)
	}
}

func TestConfigEditorIsOffInOpenMode(t *testing.T) {
	_, base, _ := editorDaemon(t, false)
	code, body := call(t, http.MethodGet, base+"/api/0/config", "", nil, nil)
	if code != http.StatusConflict || !strings.Contains(body, "open mode") || !strings.Contains(body, "users:") {
		t.Fatalf("open mode: %d %s", code, body)
	}
}
