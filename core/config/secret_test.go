package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestSecretsNeverPrint loads every kind of daemon secret (host key, enroll
// key, metrics token, a channel's settings) from a file and prints the
// config every way a log line or a debug dump could: none of
// them may show a secret, while Reveal still returns it.
func TestSecretsNeverPrint(t *testing.T) {
	const (
		hostKey = "hostkey-0123456789abcdef-0123456789"
		enroll  = "enroll-0123456789abcdef-0123456789ab"
		token   = "metrics-0123456789abcdef-0123456789a"
		apiTok  = "pushover-token-0123456789abcdef"
	)
	cfg, err := Load(write(t, "enroll_key: "+enroll+"\nmetrics_token: "+token+"\nwatchhosts:\n  web01:\n    key: "+hostKey+"\n"+
		"notification_channels:\n  ops:\n    type: pushover\n    token: "+apiTok+"\n"), []string{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Channels["ops"].FieldValues()["token"] != apiTok {
		t.Fatal("the channel's fields do not hold the file's values")
	}
	if cfg.Watchhosts["web01"].Key.Reveal() != hostKey || cfg.EnrollKey.Reveal() != enroll || string(cfg.MetricsToken.Bytes()) != token {
		t.Fatal("the loaded secrets do not hold the file's values")
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	log := hclog.New(&hclog.LoggerOptions{Output: &logged, JSONFormat: true})
	log.Info("config", "enroll_key", cfg.EnrollKey, "host", cfg.Watchhosts["web01"], "channel", cfg.Channels["ops"])
	hclog.New(&hclog.LoggerOptions{Output: &logged}).Info("config", "metrics_token", cfg.MetricsToken, "cfg", cfg)
	for name, out := range map[string]string{
		"%v":   fmt.Sprintf("%v", cfg),
		"%+v":  fmt.Sprintf("%+v", cfg),
		"%#v":  fmt.Sprintf("%#v", *cfg),
		"%s":   fmt.Sprintf("%s", cfg.EnrollKey),
		"json": string(js),
		"log":  logged.String(),
	} {
		for _, secret := range []string{hostKey, enroll, token, apiTok} {
			if strings.Contains(out, secret) {
				t.Errorf("%s form shows a secret: %s", name, out)
			}
		}
		if !strings.Contains(out, Redacted) {
			t.Errorf("%s form does not say %s: %s", name, Redacted, out)
		}
	}
}
