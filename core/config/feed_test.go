package config

import (
	"strings"
	"testing"
)

// The live feed's client limits (issue 12): fleet-sized by default,
// settable from the file and the environment, refused with the key named.
func TestWSClientLimits(t *testing.T) {
	cfg, err := Load(write(t, "hbd_port: 50004\n"), []string{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WSMaxClients != 5000 || cfg.WSMaxPerUser != 16 {
		t.Fatalf("defaults: ws_max_clients %d, ws_max_clients_per_user %d", cfg.WSMaxClients, cfg.WSMaxPerUser)
	}
	cfg, err = Load(write(t, "ws_max_clients: 20000\nws_max_clients_per_user: 4\n"), []string{"HBD_WS_MAX_CLIENTS=12000"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WSMaxClients != 12000 || cfg.WSMaxPerUser != 4 {
		t.Fatalf("set: ws_max_clients %d, ws_max_clients_per_user %d", cfg.WSMaxClients, cfg.WSMaxPerUser)
	}
	for _, c := range []struct{ body, want string }{
		{"ws_max_clients: 0\n", "ws_max_clients: must be between 1 and 1000000, got 0"},
		{"ws_max_clients: 2000000\n", "ws_max_clients: must be between 1 and 1000000, got 2000000"},
		{"ws_max_clients_per_user: -1\n", "ws_max_clients_per_user: must be between 1 and 1000000, got -1"},
		{"ws_max_clients_per_user: many\n", "ws_max_clients_per_user"},
	} {
		p := write(t, c.body)
		_, err := Load(p, []string{})
		if err == nil || !strings.HasPrefix(err.Error(), p+": ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.body, err, c.want)
		}
	}
}
