package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/store"
)

// writeConfig writes hbd.yaml in dir: data_dir dir plus extra.
func writeConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	p := filepath.Join(dir, "hbd.yaml")
	if err := os.WriteFile(p, []byte("data_dir: "+dir+"\nwatchhosts: {}\n"+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// check-config refuses a database written by a newer hbd, as serve does,
// without changing it; it creates no database where there is none.
func TestCheckConfigRefusesANewerDatabase(t *testing.T) {
	dir := t.TempDir()
	p := writeConfig(t, dir, "")
	if code, out, errs := hbd([]string{"check-config", "-config", p}, ""); code != 0 || !strings.Contains(out, "ok (") {
		t.Fatalf("no database yet: exit %d, %q %q", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, store.FileName)); !os.IsNotExist(err) {
		t.Fatalf("check-config created the database (%v)", err)
	}
	st, err := store.Open(context.Background(), dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if code, _, errs := hbd([]string{"check-config", "-config", p}, ""); code != 0 {
		t.Fatalf("current database: exit %d, %q", code, errs)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied) VALUES (9999, 'from the future', 0)`); err != nil {
		t.Fatal(err)
	}
	code, _, errs := hbd([]string{"check-config", "-config", p}, "")
	if code != 1 || !strings.Contains(errs, p+": data_dir: ") || !strings.Contains(errs, "[9999]") {
		t.Errorf("newer database: exit %d, %q; want 1 naming data_dir and migration 9999", code, errs)
	}
}

// check-config loads the certificates serve loads: tls_cert/tls_key and
// wss_pem/wss_key (relative to cert_path).
func TestCheckConfigLoadsCertificates(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	os.Mkdir(certs, 0o700)
	if err := os.WriteFile(filepath.Join(certs, "bad.pem"), []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		extra, key string
	}{
		{"tls_cert: " + filepath.Join(certs, "missing.pem") + "\ntls_key: " + filepath.Join(certs, "missing.key") + "\n", "tls_cert"},
		{"wss_port: 50006\ncert_path: " + certs + "\nwss_pem: missing.pem\nwss_key: missing.key\n", "wss_pem"},
		{"wss_port: 50006\ncert_path: " + certs + "\nwss_pem: bad.pem\nwss_key: bad.pem\n", "wss_pem"},
	} {
		p := writeConfig(t, dir, c.extra)
		if code, out, errs := hbd([]string{"check-config", "-config", p}, ""); code != 1 || !strings.Contains(errs, p+": "+c.key+": ") {
			t.Errorf("%q: exit %d, %q %q; want 1 naming %s", c.extra, code, out, errs, c.key)
		}
	}
}

// check-config checks the file's channels against the plugins of
// plugins_dir as serve does at start: the type is installed, the fields
// are the type's and the plugin accepts them. Without the directory the
// types are not checked, and it says so.
func TestCheckConfigChecksChannelTypes(t *testing.T) {
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	os.Mkdir(plugins, 0o755)
	pht.Install(t, plugins, pht.Webhook, "hbd-notifier-webhook")
	channels := func(chans string) string {
		return "plugins_dir: " + plugins + "\nnotification_channels:\n" + chans
	}
	for _, c := range []struct {
		extra string
		code  int
		want  string
	}{
		{channels("  ops: {type: webhook, url: 'https://hooks.example.net/x'}\n"), 0, "ok ("},
		{channels("  ops: {type: webhook, url: 'https://hooks.example.net/x'}\n  pager: {type: pushover, token: t, user: u}\n"), 1,
			"notification_channels.pager: type 'pushover' is not installed (installed: webhook)"},
		{channels("  ops: {type: webhook, url: 'https://hooks.example.net/x', colour: red}\n"), 1,
			"notification_channels.ops.colour: not a field of type 'webhook'"},
		{channels("  ops: {type: webhook, url: 'ftp://hooks.example.net/x'}\n"), 1, "notification_channels.ops: "},
		{"plugins_dir: " + filepath.Join(dir, "none") + "\nnotification_channels:\n  pager: {type: pushover, token: t, user: u}\n", 0,
			"does not exist: the types of notification_channels are not checked"},
	} {
		p := writeConfig(t, dir, c.extra)
		code, out, errs := hbd([]string{"check-config", "-config", p}, "")
		if code != c.code || !strings.Contains(out+errs, c.want) {
			t.Errorf("%q: exit %d, %q %q; want %d and %q", c.extra, code, out, errs, c.code, c.want)
		}
	}
}

// An HBD_ variable that is no config key (another tool's) does not stop
// check-config: it prints one warning naming it.
func TestCheckConfigWarnsOfEnvironmentVariablesThatAreNoKey(t *testing.T) {
	t.Setenv("HBD_SRC", "/src/hbd")
	t.Setenv("HBD_HBD_PORT__X", "1")
	dir := t.TempDir()
	p := writeConfig(t, dir, "")
	code, out, errs := hbd([]string{"check-config", "-config", p}, "")
	want := p + ": warning: ignoring environment variables that set no config key: HBD_HBD_PORT__X, HBD_SRC\n"
	if code != 0 || strings.Count(out, "warning: ignoring environment") != 1 || !strings.Contains(out, want) {
		t.Errorf("exit %d, %q %q; want 0 and %q", code, out, errs, want)
	}
}
