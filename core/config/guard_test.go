package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCheckTransitionRefusesSilentDowngrades(t *testing.T) {
	const hash = `$2a$10$abcdefghijklmnopqrstuu0123456789012345678901234567890`
	base := "data_dir: ./data\n"
	users := "users:\n  admin: {password_hash: '" + hash + "', admin: true}\n"
	hosts := "watchhosts:\n  web01: {key: '0123456789abcdef0123456789abcdef'}\n"
	prev := Summary{Users: 1, Hosts: 1, Channels: 0}
	cases := []struct {
		name, yaml string
		wantKey    string // "" means accepted
	}{
		{"empty file", "", "users"},
		{"cut before users", base + hosts, "users"},
		{"open mode confirmed", base + hosts + "auth: {open: true}\n", ""},
		{"same shape", base + hosts + users, ""},
		{"hosts dropped", base + users, "watchhosts"},
		{"hosts cut after the key", base + users + "watchhosts:\n", "watchhosts"},
		{"no hosts on purpose", base + users + "watchhosts: {}\n", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("hbd.yaml", []byte(c.yaml), []string{})
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			err = CheckTransition(prev, cfg)
			if c.wantKey == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != c.wantKey || ce.File != "hbd.yaml" {
				t.Fatalf("err = %v, want an *Error on key %s", err, c.wantKey)
			}
		})
	}
	// Channels are guarded the same way.
	cfg, err := Parse("hbd.yaml", []byte(base+hosts+users), []string{})
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckTransition(Summary{Users: 1, Hosts: 1, Channels: 2}, cfg); err == nil || !strings.Contains(err.Error(), "notification_channels: {}") {
		t.Errorf("dropping every channel: %v", err)
	}
	if _, err := Parse("hbd.yaml", []byte(base+users+"auth: {open: true}\n"), []string{}); err == nil {
		t.Error("auth.open with users accepted")
	}
}

func TestConfigStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := ReadState(dir); ok || err != nil {
		t.Fatalf("fresh dir: ok=%v err=%v", ok, err)
	}
	want := Summary{Users: 2, Hosts: 3, Channels: 1}
	if err := WriteState(dir, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := ReadState(dir)
	if !ok || err != nil || got != want {
		t.Fatalf("ReadState = %+v %v %v", got, ok, err)
	}
	cfg, err := Parse("hbd.yaml", []byte("data_dir: "+dir+"\n"), []string{})
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckAgainstState(cfg); err == nil {
		t.Error("an empty config passed against a recorded state with users")
	}
}

// Any unrelated HBD_ environment variable (HBD_SRC=x) stopped the daemon
// with an error blaming the config file (issue 14): it is ignored with a
// warning naming it; an unknown key in the file is still an error.
func TestUnrelatedEnvironmentVariablesAreIgnored(t *testing.T) {
	cfg, err := Parse("hbd.yaml", []byte("hbd_port: 50004\n"), []string{"HBD_SRC=x", "HBD_HBD_PORT=50010", "HBD_ALERTING__SNOOZE=1"})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.HBDPort != 50010 {
		t.Errorf("hbd_port = %d, the environment's 50010 lost", cfg.HBDPort)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "HBD_SRC") || !strings.Contains(cfg.Warnings[0], "HBD_ALERTING__SNOOZE") {
		t.Errorf("warnings = %q", cfg.Warnings)
	}
	if _, err := Parse("hbd.yaml", []byte("hbd_prot: 50004\n"), []string{"HBD_SRC=x"}); err == nil || !strings.Contains(err.Error(), "hbd_prot: unknown key") {
		t.Errorf("a typo in the file: %v", err)
	}
	if _, err := Parse("hbd.yaml", []byte("alerting:\n  snooze: 1\n"), nil); err == nil || !strings.Contains(err.Error(), "alerting.snooze: unknown key") {
		t.Errorf("a nested typo in the file: %v", err)
	}
}

// An HBD_ variable that names no config key is ignored with one warning
// naming every such variable as it is spelt in the environment, also when
// it descends below an unknown key, a scalar or a list (each of which
// stopped the daemon with an error blaming the file, or was named by its
// unknown parent only).
func TestEnvironmentVariablesThatAreNoKeyAreEachNamed(t *testing.T) {
	file := []byte("hbd_port: 50004\nwatchhosts:\n  web01:\n    key: \"0123456789abcdef0123456789abcdef\"\nmaintenance: []\n")
	ignored := []string{"HBD_SRC__DIR", "HBD_SRC__REV", "HBD_Src", "HBD_HBD_PORT__X", "HBD_MAINTENANCE__X", "HBD_", "HBD_WATCHHOSTS__WEB01__KEE", "HBD_AUTH__OPEN__YES"}
	environ := []string{"PATH=/bin", "HBD_WS_PORT=50011", "HBD_WATCHHOSTS__WEB01__TIMEOUT=45s", "HBD_NOTIFICATION_CHANNELS__OPS__TYPE=webhook",
		"HBD_NOTIFICATION_CHANNELS__OPS__URL=https://hooks.example.net/x"}
	for _, name := range ignored {
		environ = append(environ, name+"=1")
	}
	cfg, err := Parse("hbd.yaml", file, environ)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.WSPort != 50011 || cfg.Watchhosts["web01"].Timeout != 45*time.Second || cfg.Channels["ops"].Type != "webhook" {
		t.Errorf("the overrides that are keys were lost: ws_port %d, timeout %v, channels %v", cfg.WSPort, cfg.Watchhosts["web01"].Timeout, cfg.Channels)
	}
	if len(cfg.Warnings) != 1 {
		t.Fatalf("warnings = %q, want one", cfg.Warnings)
	}
	w := cfg.Warnings[0]
	names := strings.Split(strings.TrimPrefix(w, "ignoring environment variables that set no config key: "), ", ")
	slices.Sort(names)
	want := slices.Clone(ignored)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("warning %q names %q, want exactly %q", w, names, want)
	}
	// A variable that is a key keeps its value check: a bad value is an
	// error naming the variable's key.
	if _, err := Parse("hbd.yaml", file, []string{"HBD_HBD_PORT=abc"}); err == nil || !strings.Contains(err.Error(), "hbd_port") {
		t.Errorf("HBD_HBD_PORT=abc: %v", err)
	}
}
