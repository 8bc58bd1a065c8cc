package config

import (
	"errors"
	"testing"
)

// FuzzParse: any file either loads into a config that validates, or is
// refused with an *Error naming the file; never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte("hbd_port: 50004\nwatchhosts:\n  web01: {key: '0123456789abcdef0123456789abcdef', timeout: 30s}\n"))
	f.Add([]byte("thresholds:\n  cpu_monitor.*: {warning: 80, critical: 90, for: 3}\n"))
	f.Add([]byte("notification_channels:\n  ops: {type: webhook, url: 'http://x', hosts: ['web*']}\n"))
	f.Add([]byte("users:\n  alice: {password_hash: x}\n"))
	f.Add([]byte("\t- [:\n"))
	f.Add([]byte("retention: 30d\nalerting: {stale_after: 5m, heartbeat_late: none}\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := Parse("hbd.yaml", raw, []string{})
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "hbd.yaml" {
				t.Fatalf("error %v is not an *Error naming the file", err)
			}
			return
		}
		if err := cfg.validate(); err != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v", err)
		}
	})
}
