package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/agent/collect"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/protocol"
)

const validKey = "test-key-0123456789abcdef-0123456789"

// writeConfig writes a config file with the required keys plus extra;
// a top-level key in extra replaces the required one.
func writeConfig(t *testing.T, extra string) string {
	t.Helper()
	body := extra
	for _, line := range []string{"host: web01", "key: " + validKey, "server_ipv4: 127.0.0.1:50003", "api_url: http://127.0.0.1:50004"} {
		k, _, _ := strings.Cut(line, ":")
		if !strings.HasPrefix(extra, k+":") && !strings.Contains(extra, "\n"+k+":") {
			body = line + "\n" + body
		}
	}
	path := filepath.Join(t.TempDir(), "hbc.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func noEnv() []string { return nil }

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := loadConfig("../../examples/hbc.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Host: "localhost", Key: "example-key-change-me-0123456789abcdef",
		ServerIPv4: "127.0.0.1:50003", ServerIPv6: "[::1]:50003", HeartbeatInterval: 5 * time.Second,
		APIURL: "http://127.0.0.1:50004", SpoolDir: "./data/hbc-spool", SpoolMaxBytes: 64 << 20,
		SendInterval: 5 * time.Second, LogLevel: "info",
	}
	got := cfg
	got.Plugins, got.Exec = nil, nil
	if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) || string(cfg.Key) != string(want.Key) {
		t.Fatalf("got  %#v\nwant %#v", got, want)
	}
	for name, interval := range map[string]time.Duration{
		collect.CPU: 10 * time.Second, collect.Memory: 10 * time.Second,
		collect.Disk: 30 * time.Second, collect.Network: 10 * time.Second,
	} {
		if p := cfg.Plugins[name]; !p.Enabled || p.Interval != interval {
			t.Errorf("%s: %+v", name, p)
		}
	}
	if len(cfg.Exec) != 0 {
		t.Errorf("exec: %+v", cfg.Exec)
	}
}

func TestDefaultsFillWhatTheFileLeavesOut(t *testing.T) {
	path := writeConfig(t, "plugins:\n  cpu_monitor:\n    interval: 3\n  disk_monitor:\n    enabled: false\n"+
		"exec:\n  - name: queue\n    command: [/bin/true]\n")
	cfg, err := loadConfig(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HeartbeatInterval != DefaultHeartbeatInterval || cfg.SendInterval != DefaultSendInterval ||
		cfg.SpoolMaxBytes != DefaultSpoolMaxBytes || cfg.SpoolDir != DefaultSpoolDir || cfg.LogLevel != "info" {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	if p := cfg.Plugins[collect.CPU]; !p.Enabled || p.Interval != 3*time.Second {
		t.Errorf("cpu_monitor (a bare number is seconds, as for the daemon): %+v", p)
	}
	if p := cfg.Plugins[collect.Disk]; p.Enabled || p.Interval != DefaultDiskInterval {
		t.Errorf("disk_monitor: %+v", p)
	}
	if p := cfg.Plugins[collect.Memory]; !p.Enabled || p.Interval != DefaultPluginInterval {
		t.Errorf("memory_monitor not enabled by default: %+v", p)
	}
	if e := cfg.Exec[0]; e.Interval != DefaultExecInterval || e.Timeout != DefaultExecTimeout {
		t.Errorf("exec defaults: %+v", e)
	}
}

// An exec plugin's units: flat keys, paths and nested maps all name
// metric paths; the agent declares them with the plugin's name.
func TestExecUnitsFromTheConfig(t *testing.T) {
	path := writeConfig(t, "exec:\n  - name: queue\n    command: [/bin/true]\n    units:\n      depth: count\n"+
		"      \"workers.busy\": percent\n      latency: {p99: milliseconds}\n      rx: bytes_total\n")
	cfg, err := loadConfig(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"depth": "count", "workers.busy": "percent", "latency.p99": "milliseconds", "rx": "bytes_total"}
	if got := cfg.Exec[0].UnitMap; !maps.Equal(got, want) {
		t.Fatalf("units %v, want %v", got, want)
	}
	units := New(cfg, hclog.NewNullLogger()).Units()
	if !maps.Equal(units["queue"], want) || units[collect.CPU]["frequency"] != "MHz" || units[protocol.AgentPlugin][protocol.AgentSpoolBytes] != "bytes" {
		t.Fatalf("agent units %v", units)
	}
}

func TestEnvironmentOverridesTheFile(t *testing.T) {
	path := writeConfig(t, "send_interval: 5s\n")
	env := []string{
		"HBC_API_URL=https://hbd.example.net:50004",
		"HBC_SEND_INTERVAL=2s",
		"HBC_SPOOL_MAX_BYTES=2MiB",
		"HBC_PLUGINS__DISK_MONITOR__ENABLED=false",
		"HBC_LOG_JSON=true",
		"UNRELATED=1",
	}
	cfg, err := loadConfig(path, func() []string { return env })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.APIURL != "https://hbd.example.net:50004" || cfg.SendInterval != 2*time.Second ||
		cfg.SpoolMaxBytes != 2<<20 || cfg.Plugins[collect.Disk].Enabled || !cfg.LogJSON {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
}

func TestBadConfigNamesFileKeyAndProblem(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		env   []string
		want  []string // substrings of the error, after the file name
	}{
		{name: "unknown top-level key", extra: "hearbeat_interval: 5s\n",
			want: []string{"hearbeat_interval: unknown key"}},
		{name: "unknown plugin field", extra: "plugins:\n  cpu_monitor:\n    intervall: 5s\n",
			want: []string{"plugins.cpu_monitor.intervall: unknown key"}},
		{name: "unknown built-in", extra: "plugins:\n  gpu_monitor:\n    enabled: true\n",
			want: []string{"plugins.gpu_monitor: unknown built-in plugin"}},
		{name: "unknown exec field", extra: "exec:\n  - name: q\n    command: [/bin/true]\n    shell: true\n",
			want: []string{"exec[0].shell: unknown key"}},
		{name: "bad duration", extra: "heartbeat_interval: 5x\n",
			want: []string{`heartbeat_interval: invalid duration "5x"`}},
		{name: "interval too short", extra: "plugins:\n  memory_monitor:\n    interval: 10ms\n",
			want: []string{"plugins.memory_monitor.interval: 10ms is below the minimum"}},
		{name: "bad host name", extra: "host: web 01\n",
			want: []string{`host: "web 01" must be 1-64 letters`}},
		{name: "heartbeat interval too long", extra: "heartbeat_interval: 2h\n",
			want: []string{"heartbeat_interval: 2h0m0s is above the maximum"}},
		{name: "short key", extra: "key: short\n",
			want: []string{"key: must be at least 32 bytes, has 5"}},
		{name: "no heartbeat address", extra: "server_ipv4: \"\"\n",
			want: []string{"server_ipv4: set server_ipv4, server_ipv6 or both"}},
		{name: "IPv6 address as server_ipv4", extra: "server_ipv4: \"[::1]:50003\"\n",
			want: []string{`server_ipv4: "[::1]:50003" is not an IPv4 address`}},
		{name: "IPv4 address as server_ipv6", extra: "server_ipv6: 127.0.0.1:50003\n",
			want: []string{`server_ipv6: "127.0.0.1:50003" is not an IPv6 address`}},
		{name: "missing port", extra: "server_ipv6: \"::1\"\n",
			want: []string{`server_ipv6: "::1" is not host:port`}},
		{name: "api_url without scheme", extra: "api_url: 127.0.0.1:50004\n",
			want: []string{"api_url:", "http://"}},
		{name: "bad size", extra: "spool_max_bytes: lots\n",
			want: []string{`spool_max_bytes: "lots" is not a size`}},
		{name: "spool too small", extra: "spool_max_bytes: 1KiB\n",
			want: []string{"spool_max_bytes: 1024 is below the minimum"}},
		{name: "bad log level", extra: "log_level: loud\n",
			want: []string{`log_level: "loud" must be one of`}},
		{name: "bad exec name", extra: "exec:\n  - name: Mail-Queue\n    command: [/bin/true]\n",
			want: []string{`exec[0].name: "Mail-Queue" must be lower case`}},
		{name: "exec named like a built-in", extra: "exec:\n  - name: cpu_monitor\n    command: [/bin/true]\n",
			want: []string{`exec[0].name: "cpu_monitor" is a built-in`}},
		{name: "exec named like the health report", extra: "exec:\n  - name: hbc\n    command: [/bin/true]\n",
			want: []string{`exec[0].name: "hbc" is reserved for the agent's own health report`}},
		{name: "duplicate exec name", extra: "exec:\n  - name: q\n    command: [/bin/true]\n  - name: q\n    command: [/bin/true]\n",
			want: []string{`exec[1].name: "q" is used by another`}},
		{name: "exec without command", extra: "exec:\n  - name: q\n",
			want: []string{"exec[0].command: must list the program"}},
		{name: "exec command not found", extra: "exec:\n  - name: q\n    command: [/nonexistent/check]\n",
			want: []string{"exec[0].command:", "/nonexistent/check"}},
		{name: "exec unit not in the vocabulary", extra: "exec:\n  - name: q\n    command: [/bin/true]\n    units: {depth: furlongs}\n",
			want: []string{`exec[0].units: unit "furlongs" of "depth" is not one of`, `"bytes/s"`}},
		{name: "exec unit key with an empty segment", extra: "exec:\n  - name: q\n    command: [/bin/true]\n    units: {\"a..b\": count}\n",
			want: []string{`exec[0].units: unit key "a..b" has an empty path segment`}},
		{name: "exec unit that is not a name", extra: "exec:\n  - name: q\n    command: [/bin/true]\n    units: {depth: 5}\n",
			want: []string{`exec[0].units: unit of "depth" must be a unit name`}},
		{name: "exec timeout above interval", extra: "exec:\n  - name: q\n    command: [/bin/true]\n    interval: 5s\n    timeout: 6s\n",
			want: []string{"exec[0].timeout: 6s must be positive and at most the interval"}},
		{name: "several problems at once", extra: "key: short\nlog_level: loud\n",
			want: []string{"key: must be at least", "log_level:"}},
		{name: "single address and list together", extra: "servers_ipv4: [\"127.0.0.1:50013\"]\n",
			want: []string{"servers_ipv4: set server_ipv4 or servers_ipv4, not both"}},
		{name: "api_url and api_urls together", extra: "api_urls: [\"http://127.0.0.1:50014\"]\n",
			want: []string{"api_urls: set api_url or api_urls, not both"}},
		{name: "bad list entry is named by index", extra: noSingles + "servers_ipv4: [\"127.0.0.1:50003\", \"[::1]:50003\"]\napi_urls: [\"http://a:1\", \"b:2\"]\n",
			want: []string{`servers_ipv4[1]: "[::1]:50003" is not an IPv4 address`, `api_urls[1]: "b:2" must be an http://`}},
		{name: "daemon listed twice", extra: noSingles + "servers_ipv4: [\"127.0.0.1:50003\", \"127.0.0.1:50003\"]\napi_urls: [\"http://a:1\", \"http://a:1/\"]\n",
			want: []string{`servers_ipv4[1]: "127.0.0.1:50003" is listed twice`, `api_urls[1]: "http://a:1/" is listed twice`}},
		{name: "too many daemons", extra: noSingles + "servers_ipv4: [" + strings.Repeat(`"127.0.0.1:1",`, MaxDaemons) + "\"127.0.0.1:2\"]\napi_urls: [\"http://a:1\"]\n",
			want: []string{"servers_ipv4: lists 17 daemons, at most 16"}},
		{name: "bad list entry from the environment names the variable", env: []string{"HBC_API_URL=", "HBC_API_URLS=http://a:1, ftp://b:2"},
			want: []string{`environment HBC_API_URLS (api_urls[1]): "ftp://b:2" must be an http://`}},
		{name: "bad environment value names the variable", env: []string{"HBC_SEND_INTERVAL=soon"},
			want: []string{"environment HBC_SEND_INTERVAL (send_interval):", `invalid duration "soon"`}},
		{name: "unknown environment key names the variable", env: []string{"HBC_SPOOL=1"},
			want: []string{"environment HBC_SPOOL (spool): unknown key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.extra)
			_, err := loadConfig(path, func() []string { return tt.env })
			if err == nil {
				t.Fatal("config accepted")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error does not wrap ErrInvalidConfig: %v", err)
			}
			msg := err.Error()
			if tt.env == nil && !strings.Contains(msg, path+": ") {
				t.Errorf("error does not name the file %s:\n%s", path, msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, validKey) {
				t.Errorf("error leaks the key:\n%s", msg)
			}
		})
	}
}

// noSingles empties the single-address keys writeConfig adds.
const noSingles = "server_ipv4: \"\"\napi_url: \"\"\n"

// Several daemons: lists from the file or from the environment (commas or
// spaces); the i-th entries of servers_ipv4 and servers_ipv6 are one
// heartbeat target, and the single keys still work alone.
func TestDaemonListsFromFileAndEnvironment(t *testing.T) {
	path := writeConfig(t, noSingles+`servers_ipv4: ["127.0.0.1:50003", "192.0.2.2:50003", "hbd3.example.net:50003"]
servers_ipv6: ["[::1]:50003"]
api_urls: ["http://127.0.0.1:50004", "https://192.0.2.2:50004"]
`)
	cfg, err := loadConfig(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	wantTargets := []HeartbeatTarget{{"127.0.0.1:50003", "[::1]:50003"}, {"192.0.2.2:50003", ""}, {"hbd3.example.net:50003", ""}}
	if fmt.Sprint(cfg.HeartbeatTargets()) != fmt.Sprint(wantTargets) {
		t.Errorf("heartbeat targets %v, want %v", cfg.HeartbeatTargets(), wantTargets)
	}
	if got := fmt.Sprint(cfg.DaemonURLs()); got != "[http://127.0.0.1:50004 https://192.0.2.2:50004]" {
		t.Errorf("daemon URLs %s", got)
	}

	env := []string{"HBC_SERVERS_IPV4=", "HBC_SERVERS_IPV6=[::1]:50003 [::1]:50013", "HBC_API_URLS=http://h1:50004,http://h2:50004"}
	cfg, err = loadConfig(path, func() []string { return env })
	if err != nil {
		t.Fatal(err)
	}
	wantTargets = []HeartbeatTarget{{"", "[::1]:50003"}, {"", "[::1]:50013"}}
	if fmt.Sprint(cfg.HeartbeatTargets()) != fmt.Sprint(wantTargets) || fmt.Sprint(cfg.DaemonURLs()) != "[http://h1:50004 http://h2:50004]" {
		t.Errorf("environment lists: targets %v, URLs %v", cfg.HeartbeatTargets(), cfg.DaemonURLs())
	}

	cfg, err = loadConfig(writeConfig(t, "server_ipv6: \"[::1]:50003\"\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cfg.HeartbeatTargets()) != "[{127.0.0.1:50003 [::1]:50003}]" || fmt.Sprint(cfg.DaemonURLs()) != "[http://127.0.0.1:50004]" {
		t.Errorf("single keys: targets %v, URLs %v", cfg.HeartbeatTargets(), cfg.DaemonURLs())
	}
}

func TestMissingFileIsNamed(t *testing.T) {
	_, err := loadConfig("/nonexistent/hbc.yaml", noEnv)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/hbc.yaml") {
		t.Fatalf("got %v", err)
	}
}

func TestHostDefaultsToTheSystemName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hbc.yaml")
	body := "key: " + validKey + "\nserver_ipv6: \"[::1]:50003\"\napi_url: http://[::1]:50004\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := os.Hostname(); cfg.Host != h {
		t.Fatalf("host %q, want %q", cfg.Host, h)
	}
}

func TestKeyNeverPrints(t *testing.T) {
	cfg, err := loadConfig(writeConfig(t, ""), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), string(js)} {
		if strings.Contains(out, validKey) {
			t.Fatalf("key printed: %s", out)
		}
	}
	if string(cfg.Key.Bytes()) != validKey {
		t.Fatal("Bytes does not return the key")
	}
}

func TestEnrollKeyDerivesTheHostKey(t *testing.T) {
	enroll := "enroll-key-0123456789abcdef-0123456789"
	body := "host: web09\nserver_ipv4: 127.0.0.1:50003\napi_url: http://127.0.0.1:50004\nenroll_key: " + enroll + "\n"
	path := filepath.Join(t.TempDir(), "hbc.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if want := heartbeat.DeriveHostKey([]byte(enroll), "web09"); string(cfg.Key) != string(want) {
		t.Fatal("key not derived from enroll_key and host")
	}
	_, err = loadConfig(writeConfig(t, "enroll_key: "+enroll+"\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "enroll_key: set key or enroll_key, not both") {
		t.Fatalf("both keys: %v", err)
	}
}
