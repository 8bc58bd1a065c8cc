package api_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/auth/authtest"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
)

// configFile is a config file on disk with the reload of the daemon
// (config.Validate against the config in force, which a good reload
// replaces): the admin config editor's file in API tests without a
// daemon. core/daemon's tests edit a real daemon's file.
type configFile struct {
	path    string
	st      *store.Store
	mu      sync.Mutex
	inForce *config.Config
	reloads int
}

var _ api.ConfigFile = (*configFile)(nil)

// newConfigFile writes a valid hbd.yaml (with an admin when users) into
// a temporary directory.
func newConfigFile(t *testing.T, st *store.Store, users bool) *configFile {
	t.Helper()
	text := "enroll_key: \"" + strings.Repeat("e", config.MinKeyBytes) + "\"\nwatchhosts:\n  web01:\n    key: \"" + testutil.Key + "\"\n"
	if users {
		text += "users:\n  admin:\n    password_hash: \"" + authtest.Hash("admin") + "\"\n    admin: true\n"
	}
	path := filepath.Join(t.TempDir(), "hbd.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(path, []byte(text), []string{})
	if err != nil {
		t.Fatal(err)
	}
	return &configFile{path: path, st: st, inForce: cfg}
}

func (f *configFile) ConfigPath() string { return f.path }

func (f *configFile) CheckConfig(raw []byte) (*config.Config, error) {
	f.mu.Lock()
	prev := f.inForce.Summary()
	f.mu.Unlock()
	return config.Validate(prev, f.path, raw, []string{})
}

func (f *configFile) Reload() error {
	raw, err := config.ReadFile(f.path)
	if err != nil {
		return err
	}
	cfg, err := f.CheckConfig(raw)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.inForce = cfg
	f.reloads++
	f.mu.Unlock()
	return nil
}

func (f *configFile) JournalSync(ctx context.Context, host, msg string) error {
	return f.st.JournalSync(ctx, host, msg)
}

// Text returns the file's content.
func (f *configFile) Text(t *testing.T) string {
	b, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Version returns the file's version.
func (f *configFile) Version(t *testing.T) string { return config.Version([]byte(f.Text(t))) }
