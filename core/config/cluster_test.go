package config

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestClusterDefaultsAndNode(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte("store: {driver: postgres, dsn: 'host=db'}\ncluster: {enabled: true}\n"), []string{})
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if c := cfg.Cluster; c.LeaseTTL != DefaultLeaseTTL || c.RenewInterval != DefaultRenewInterval || c.Node != host {
		t.Fatalf("cluster = %+v, want the defaults and node %q", c, host)
	}
	cfg, err = Parse("t.yaml", []byte("store: {driver: postgres, dsn: 'host=db'}\ncluster: {enabled: true, node: a, lease_ttl: 2s, renew_interval: 500ms}\n"), []string{})
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Cluster; c.LeaseTTL != 2*time.Second || c.RenewInterval != 500*time.Millisecond || c.Node != "a" {
		t.Fatalf("cluster = %+v", c)
	}
	cfg, err = Parse("t.yaml", []byte("cluster: {enabled: false, node: x}\n"), []string{})
	if err != nil || cfg.Cluster.Enabled {
		t.Fatalf("a disabled cluster key on sqlite: %+v, %v", cfg.Cluster, err)
	}
}

func TestClusterKeysAreValidatedNamingTheKey(t *testing.T) {
	const pg = "store: {driver: postgres, dsn: 'host=db'}\n"
	for _, c := range []struct{ yaml, key, msg string }{
		{"cluster: {enabled: true}", "cluster.enabled", "needs store.driver postgres"},
		{pg + "cluster: {enabled: true, lease_ttl: 500ms}", "cluster.lease_ttl", "at least 1s"},
		{pg + "cluster: {enabled: true, lease_ttl: 4s, renew_interval: 2s}", "cluster.renew_interval", "less than half of cluster.lease_ttl"},
		{pg + "cluster: {enabled: true, renew_interval: -1s}", "cluster.renew_interval", "must be positive"},
		{pg + "cluster: {enabled: true, node: \"a\\tb\"}", "cluster.node", "control characters"},
		{pg + "cluster: {enabled: true, node: " + strings.Repeat("n", 129) + "}", "cluster.node", "longer than 128"},
	} {
		_, err := Parse("t.yaml", []byte(c.yaml+"\n"), []string{})
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(ce.Msg, c.msg) {
			t.Errorf("%s: err = %v, want %s: ...%s...", c.yaml, err, c.key, c.msg)
		}
	}
}
