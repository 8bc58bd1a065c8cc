package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStoreDefaultsToSQLite(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte("hbd_port: 50010\n"), []string{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.Driver != StoreSQLite || cfg.Store.Postgres() {
		t.Fatalf("store = %+v, want sqlite", cfg.Store)
	}
}

func TestStoreKeysAreValidatedNamingTheKey(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	twoLines := filepath.Join(dir, "two")
	os.WriteFile(twoLines, []byte("host=a\nhost=b\n"), 0o600)
	for _, c := range []struct{ yaml, key, msg string }{
		{"store: {driver: mysql}", "store.driver", "must be sqlite or postgres"},
		{"store: {dsn: 'host=db'}", "store.dsn", "only for store.driver postgres"},
		{"store: {driver: sqlite, password_file: /x}", "store.password_file", "only for store.driver postgres"},
		{"store: {driver: postgres}", "store.dsn", "required with store.driver postgres"},
		{"store: {driver: postgres, dsn: 'host=db', dsn_file: /x}", "store.dsn_file", "exclusive"},
		{"store: {driver: postgres, dsn_file: " + filepath.Join(dir, "missing") + "}", "store.dsn_file", "cannot read"},
		{"store: {driver: postgres, dsn_file: " + empty + "}", "store.dsn_file", "is empty"},
		{"store: {driver: postgres, dsn_file: " + twoLines + "}", "store.dsn_file", "one line"},
		{"store: {driver: postgres, dsn: 'host=db', password_file: " + empty + "}", "store.password_file", "is empty"},
	} {
		_, err := Parse("t.yaml", []byte(c.yaml+"\n"), []string{})
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(ce.Msg, c.msg) || ce.File != "t.yaml" {
			t.Errorf("%s: err = %v, want %s: ...%s...", c.yaml, err, c.key, c.msg)
		}
	}
}

func TestStoreDSNIsASecretFromFileOrEnvironment(t *testing.T) {
	const pw = "s3cret-pw"
	dsn := "postgres://hbd:" + pw + "@db.example.net/hbd"
	cfg, err := Parse("t.yaml", []byte("store: {driver: postgres, dsn: '"+dsn+"'}\n"), []string{})
	if err != nil {
		t.Fatal(err)
	}
	if out := fmt.Sprintf("%v %+v %#v", cfg, cfg.Store, cfg.Store); strings.Contains(out, pw) {
		t.Fatalf("the DSN's password prints: %s", out)
	}
	if got, _, err := cfg.Store.Connection(); err != nil || got.Reveal() != dsn {
		t.Fatalf("Connection() = %q, %v", got.Reveal(), err)
	}

	cfg, err = Parse("t.yaml", []byte("store: {driver: postgres}\n"), []string{"HBD_STORE__DSN=" + dsn})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := cfg.Store.Connection(); got.Reveal() != dsn {
		t.Fatalf("from the environment: %q", got.Reveal())
	}

	dir := t.TempDir()
	dsnFile, pwFile := filepath.Join(dir, "dsn"), filepath.Join(dir, "pw")
	os.WriteFile(dsnFile, []byte("host=db.example.net user=hbd dbname=hbd\n"), 0o600)
	os.WriteFile(pwFile, []byte(pw+"\n"), 0o644)
	cfg, err = Parse("t.yaml", []byte("store: {driver: postgres, dsn_file: "+dsnFile+", password_file: "+pwFile+"}\n"), []string{})
	if err != nil {
		t.Fatal(err)
	}
	got, gotPW, err := cfg.Store.Connection()
	if err != nil || got.Reveal() != "host=db.example.net user=hbd dbname=hbd" || gotPW.Reveal() != pw {
		t.Fatalf("from files: %q %q %v", got.Reveal(), gotPW.Reveal(), err)
	}
	if w := strings.Join(cfg.Warnings, "\n"); !strings.Contains(w, "store.password_file") || !strings.Contains(w, "readable by other users") || strings.Contains(w, pw) {
		t.Fatalf("warnings = %q, want one about the password file's mode", w)
	}
}
