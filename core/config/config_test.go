package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodKey = "0123456789abcdef0123456789abcdef"

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hbd.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := Load("../../examples/hbd.yaml", []string{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HBDPort != 50004 || cfg.WSPort != 50005 || cfg.HBPort != 50003 {
		t.Fatalf("ports %d %d %d", cfg.HBDPort, cfg.WSPort, cfg.HBPort)
	}
	th, ok := cfg.Thresholds["disk_monitor.*.percent"]
	if !ok || *th.Critical != 90 {
		t.Fatalf("dotted glob key not kept whole: %+v", cfg.Thresholds)
	}
	if !cfg.OpenMode() {
		t.Fatal("example should run in open mode")
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Load(write(t, "watchhosts:\n  web01:\n    key: "+goodKey+"\n"), []string{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SampleHistory != 100 || cfg.Alerting.StaleAfter != 5*time.Minute || cfg.Auth.SessionTTL != 24*time.Hour {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	if cfg.Watchhosts["web01"].Timeout != DefaultHostTimeout {
		t.Fatal("host timeout default")
	}
	if cfg.Alerting.ForgetAfter != 24*time.Hour {
		t.Fatalf("forget_after default %v", cfg.Alerting.ForgetAfter)
	}
}

func TestForgetAfter(t *testing.T) {
	for _, c := range []struct {
		name, body string
		want       time.Duration
	}{
		{"zero never forgets", "alerting:\n  forget_after: 0\n", 0},
		{"days", "alerting:\n  forget_after: 7d\n", 7 * 24 * time.Hour},
		{"equal to stale_after", "alerting:\n  stale_after: 10m\n  forget_after: 10m\n", 10 * time.Minute},
		{"staleness off", "alerting:\n  stale_after: 0\n  forget_after: 1m\n", time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Load(write(t, c.body), []string{})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Alerting.ForgetAfter != c.want {
				t.Fatalf("forget_after %v, want %v", cfg.Alerting.ForgetAfter, c.want)
			}
		})
	}
}

func TestExplicitZeroDisables(t *testing.T) {
	cfg, err := Load(write(t, "ws_port: 0\nalerting:\n  renotify: 0\n"), []string{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WSPort != 0 || cfg.Alerting.Renotify != 0 {
		t.Fatalf("explicit zero overridden: ws=%d renotify=%v", cfg.WSPort, cfg.Alerting.Renotify)
	}
}

func TestEnvOverrides(t *testing.T) {
	env := []string{"HBD_HBD_PORT=50010", "HBD_ALERTING__STALE_AFTER=2m", "HBD_RETENTION=7d", "OTHER=1"}
	cfg, err := Load(write(t, "hbd_port: 50004\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HBDPort != 50010 || cfg.Alerting.StaleAfter != 2*time.Minute || cfg.Retention != 7*24*time.Hour {
		t.Fatalf("env not applied: port=%d stale=%v retention=%v", cfg.HBDPort, cfg.Alerting.StaleAfter, cfg.Retention)
	}
}

func TestChannelsKeepTypeFields(t *testing.T) {
	cfg, err := Load(write(t, `
notification_channels:
  ops:
    type: webhook
    url: http://x/hook
    hosts: ["web*"]
    private: true
`), []string{})
	if err != nil {
		t.Fatal(err)
	}
	ch := cfg.Channels["ops"]
	if ch.Type != "webhook" || ch.Fields["url"] != "http://x/hook" || !ch.Private || ch.MinLevel != "WARNING" || ch.Hosts[0] != "web*" {
		t.Fatalf("channel parsed wrong: %+v", ch)
	}
}

func TestBadConfigNamesFileAndKey(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"short key", "watchhosts:\n  web01:\n    key: short\n", "watchhosts.web01.key: must be at least 32 bytes"},
		{"unknown top key", "hbd_prot: 1\n", "hbd_prot: unknown key"},
		{"unknown nested key", "watchhosts:\n  web01:\n    key: " + goodKey + "\n    kee: x\n", "watchhosts.web01.kee: unknown key"},
		{"bad port", "hbd_port: 70000\n", "hbd_port: must be a port"},
		{"port not a number", "hbd_port: abc\n", "hbd_port"},
		{"warning above critical", "thresholds:\n  cpu_monitor.cpu_percent: {warning: 90, critical: 80}\n", "thresholds.cpu_monitor.cpu_percent: warning (90) is above critical (80)"},
		{"below reversed", "thresholds:\n  memory_monitor.available_mb: {warning: 100, critical: 500, below: true}\n", "with below: true"},
		{"bad glob", "thresholds:\n  \"a.***\": {warning: 1}\n", "invalid metric glob"},
		{"negative for", "thresholds:\n  a: {warning: 1, for: -1}\n", "thresholds.a.for: must not be negative"},
		{"no levels", "thresholds:\n  a: {for: 1}\n", "needs warning and/or critical"},
		{"bad duration", "retention: soon\n", "retention"},
		{"bad hash", "users:\n  alice:\n    password_hash: plain\n", "users.alice.password_hash: must be a bcrypt hash"},
		{"unknown owner", "users:\n  alice:\n    password_hash: \"$2a$10$abcdefghijklmnopqrstuuJ3y4QGvHbWc0a4ZQxqzJTxGy4YVKHBq\"\nwatchhosts:\n  web01:\n    key: " + goodKey + "\n    owner: bob\n", "watchhosts.web01.owner: unknown user \"bob\""},
		{"channel without type", "notification_channels:\n  ops:\n    url: x\n", "notification_channels.ops.type: required"},
		{"bad min level", "notification_channels:\n  ops:\n    type: webhook\n    min_level: loud\n", "min_level"},
		{"bad yaml", "hbd_port: [\n", "invalid YAML"},
		{"bad checksum", "plugin_checksums:\n  hbd-notifier-x: abc\n", "plugin_checksums.hbd-notifier-x: must be a hex SHA-256"},
		{"wss without pem", "wss_port: 50006\n", "wss_pem: required"},
		{"negative forget_after", "alerting:\n  forget_after: -1h\n", "alerting.forget_after: must not be negative"},
		{"forget_after under stale_after", "alerting:\n  stale_after: 10m\n  forget_after: 5m\n", "alerting.forget_after: must be at least alerting.stale_after (10m0s), got 5m0s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := write(t, c.body)
			_, err := Load(p, []string{})
			if err == nil {
				t.Fatalf("loaded, want error containing %q", c.want)
			}
			if !strings.HasPrefix(err.Error(), p+": ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want file %s and %q", err, p, c.want)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load("/nonexistent/hbd.yaml", []string{})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/hbd.yaml: cannot read") {
		t.Fatalf("got %v", err)
	}
}

func TestPublicURL(t *testing.T) {
	base := "watchhosts:\n  web01:\n    key: " + goodKey + "\n"
	for in, want := range map[string]string{
		"https://hbd.example.com/":     "https://hbd.example.com",
		"http://10.0.0.5:50004":        "http://10.0.0.5:50004",
		"https://example.com/hbd/":     "https://example.com/hbd",
		"ftp://hbd.example.com":        "",
		"hbd.example.com":              "",
		"https://u:p@hbd.example.com":  "",
		"https://hbd.example.com/?x=1": "",
		"https://hbd.example.com/#top": "",
	} {
		cfg, err := Load(write(t, base+"public_url: \""+in+"\"\n"), []string{})
		switch {
		case want == "" && (err == nil || !strings.Contains(err.Error(), "public_url")):
			t.Errorf("public_url %q: err %v, want an error naming the key", in, err)
		case want != "" && err != nil:
			t.Errorf("public_url %q: %v", in, err)
		case want != "" && cfg.PublicURL != want:
			t.Errorf("public_url %q = %q, want %q", in, cfg.PublicURL, want)
		}
	}
}
