package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hbdmon/hbd/core/config"
)

const editText = `# the daemon
hbd_port: 50004
enroll_key: plain-enroll-secret-value  # a comment
metrics_token: 'single''quoted-token'
store:
  dsn: "postgres://u:p%40ss@db/hbd"
watchhosts:
  web01: {key: "flow-key-aaaaaaaaaaaaaaaaaaaaaaaaaaaa", owner: alice}
  db02:
    key: |
      block-key-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
    owner: bob
users:
  alice:
    password_hash: "$2a$10$hash"
    admin: true
notification_channels:
  ops:
    type: webhook
    url: "https://hooks.example/T0KEN"
    min_level: WARNING
`

var editSecrets = []string{"plain-enroll-secret-value", "quoted-token", "p%40ss", "flow-key-", "block-key-", "$2a$10$hash", "T0KEN"}

func TestMaskSecretsHidesEverySecretAndKeepsTheRest(t *testing.T) {
	masked, err := config.MaskSecrets([]byte(editText))
	if err != nil {
		t.Fatal(err)
	}
	m := string(masked)
	for _, s := range editSecrets {
		if strings.Contains(m, s) {
			t.Errorf("masked text shows %q:\n%s", s, m)
		}
	}
	for _, keep := range []string{"# the daemon", "# a comment", "owner: alice}", "type: webhook", "min_level: WARNING", "admin: true", "owner: bob"} {
		if !strings.Contains(m, keep) {
			t.Errorf("masked text lost %q:\n%s", keep, m)
		}
	}
	if n := strings.Count(m, `"`+config.Masked+`"`); n != 7 {
		t.Errorf("%d values masked, want 7:\n%s", n, m)
	}
}

func TestRestoreSecretsPutsBackMaskedAndKeepsNewValues(t *testing.T) {
	masked, _ := config.MaskSecrets([]byte(editText))
	same, changed, err := config.RestoreSecrets([]byte(editText), masked)
	if err != nil {
		t.Fatal(err)
	}
	// A block scalar comes back as one quoted line with the same value.
	want := strings.Replace(editText, "|\n      block-key-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n", `"block-key-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n"`+"\n", 1)
	if string(same) != want || len(changed) != 0 {
		t.Fatalf("unchanged masked text restores to\n%s\nchanged %v", same, changed)
	}
	edited := strings.Replace(string(masked), `url: "`+config.Masked+`"`, `url: "https://hooks.example/NEW"`, 1)
	out, changed, err := config.RestoreSecrets([]byte(editText), []byte(edited))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "https://hooks.example/NEW") || strings.Contains(string(out), "T0KEN") {
		t.Errorf("the new url is not taken:\n%s", out)
	}
	if len(changed) != 1 || changed[0] != "notification_channels.ops.url" {
		t.Errorf("changed = %v", changed)
	}
	shown, _ := config.MaskChanged(out, changed)
	if strings.Contains(string(shown), "NEW") || !strings.Contains(string(shown), config.Masked+" (changed)") {
		t.Errorf("display text:\n%s", shown)
	}
	// A mask where the file in force has no secret cannot be restored.
	_, _, err = config.RestoreSecrets([]byte(editText), []byte(strings.Replace(string(masked), "web01:", "web03:", 1)))
	var ee *config.EditError
	if !errors.As(err, &ee) || ee.Line != 8 || ee.Key != "watchhosts.web03.key" {
		t.Fatalf("mask without a secret: %v (%+v)", err, ee)
	}
}

func TestKeyLineFindsDottedKeys(t *testing.T) {
	text := []byte("thresholds:\n  \"cpu.cpu_percent\":\n    warning: x\nmaintenance:\n  - host: a\n    start: nope\n")
	for key, want := range map[string]int{
		"thresholds.cpu.cpu_percent.warning": 3,
		"maintenance.0.start":                6,
		"thresholds.cpu.cpu_percent.nokey":   2,
		"nothing":                            0,
	} {
		if got := config.KeyLine(text, key); got != want {
			t.Errorf("KeyLine(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestUnifiedDiff(t *testing.T) {
	a := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"
	b := "a\nb\nc\nd\nE\nf\ng\nh\ni\nj\nk\n"
	got := config.UnifiedDiff("old", "new", []byte(a), []byte(b))
	want := "--- old\n+++ new\n@@ -2,9 +2,10 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n i\n j\n+k\n"
	if got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
	if config.UnifiedDiff("x", "y", []byte(a), []byte(a)) != "" {
		t.Error("equal texts differ")
	}
}
