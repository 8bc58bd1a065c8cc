package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestChannelDestinations(t *testing.T) {
	cfg, err := Load(write(t, `channel_destinations:
  allow: [10.0.0.0/8, "192.168.1.7", "::ffff:172.16.0.0/108"]
  deny: [10.9.0.0/16, "fd00::/8"]
`), []string{})
	if err != nil {
		t.Fatal(err)
	}
	allow, deny := cfg.ChannelDestinations.Prefixes()
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("172.16.0.0/12")}
	if len(allow) != 3 || allow[0] != want[0] || allow[1] != want[1] || allow[2] != want[2] {
		t.Fatalf("allow = %v, want %v", allow, want)
	}
	if len(deny) != 2 || deny[1] != netip.MustParsePrefix("fd00::/8") {
		t.Fatalf("deny = %v", deny)
	}

	env, err := Load(write(t, ""), []string{"HBD_CHANNEL_DESTINATIONS__ALLOW=127.0.0.1, 10.1.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := env.ChannelDestinations.Prefixes(); len(a) != 2 || a[0] != netip.MustParsePrefix("127.0.0.1/32") {
		t.Fatalf("allow from the environment = %v", a)
	}
}

func TestChannelDestinationsRefused(t *testing.T) {
	for _, c := range []struct{ body, key string }{
		{"channel_destinations:\n  allow: [10.0.0.0/33]\n", "channel_destinations.allow"},
		{"channel_destinations:\n  deny: [example.com]\n", "channel_destinations.deny"},
		{"channel_destinations:\n  deny: [\"fe80::1%eth0\"]\n", "channel_destinations.deny"},
		{"channel_destinations:\n  allw: [10.0.0.0/8]\n", "channel_destinations.allw"},
		{"notification_channels:\n  x: {type: webhook, url: \"http://a\", _hbd_destinations: \"{}\"}\n", "notification_channels.x._hbd_destinations"},
	} {
		_, err := Load(write(t, c.body), []string{})
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%q: error %v, want one naming %s", c.body, err, c.key)
		}
	}
}
