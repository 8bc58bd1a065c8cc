package agent

import (
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/hbdmon/hbd/core/agent/collect"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/protocol"
)

// EnvPrefix starts every environment variable that overrides a config key:
// HBC_API_URL sets api_url; "__" descends into maps, so
// HBC_PLUGINS__DISK_MONITOR__ENABLED=false sets plugins.disk_monitor.enabled.
const EnvPrefix = "HBC_"

// Defaults and bounds of the agent configuration.
const (
	DefaultHeartbeatInterval = 5 * time.Second
	DefaultSendInterval      = 5 * time.Second
	DefaultSpoolMaxBytes     = 64 << 20
	DefaultSpoolDir          = "/var/lib/hbc/spool"
	DefaultPluginInterval    = 10 * time.Second
	DefaultDiskInterval      = 30 * time.Second
	DefaultExecInterval      = 60 * time.Second
	DefaultExecTimeout       = 10 * time.Second
	MinKeyBytes              = 32
	MinSpoolMaxBytes         = 1 << 20
	MinInterval              = time.Second
)

// ErrInvalidConfig wraps every problem LoadConfig finds in a config.
var ErrInvalidConfig = errors.New("invalid configuration")

// ByteSize is a size in bytes; in the config it is an integer or a string
// with a unit: "64MiB", "512KiB", "1GiB" (or KB/MB/GB, powers of 1000).
type ByteSize int64

// Config is the agent configuration as LoadConfig returns it: defaults
// applied, every value checked.
type Config struct {
	// Host is this machine's name as the daemon's watchhosts know it.
	Host string `koanf:"host"`
	// Key is the host's secret shared with the daemon (at least 32 bytes);
	// it signs heartbeats and sample batches.
	Key config.Secret `koanf:"key"`
	// EnrollKey is the daemon's enroll_key, used instead of Key by hosts
	// that register themselves: the host key is derived from it and the
	// host name (see heartbeat.DeriveHostKey), and Key is set to the result.
	EnrollKey config.Secret `koanf:"enroll_key"`
	// ServerIPv4 and ServerIPv6 are the daemon's UDP heartbeat addresses
	// (host:port, IPv6 in brackets); either may be empty, not both.
	ServerIPv4 string `koanf:"server_ipv4"`
	ServerIPv6 string `koanf:"server_ipv6"`
	// ServersIPv4 and ServersIPv6 list the UDP heartbeat addresses of
	// several daemons (one database, see docs/HA.md), instead of
	// ServerIPv4 and ServerIPv6: every listed daemon gets heartbeats.
	ServersIPv4 []string `koanf:"servers_ipv4"`
	ServersIPv6 []string `koanf:"servers_ipv6"`
	// HeartbeatInterval is the pause between heartbeats per address family.
	HeartbeatInterval time.Duration `koanf:"heartbeat_interval"`
	// APIURL is the daemon's HTTP base URL that sample batches go to.
	APIURL string `koanf:"api_url"`
	// APIURLs lists the HTTP base URLs of several daemons, instead of
	// APIURL, in order of preference: a batch goes to one and fails over
	// to the next when it cannot take it.
	APIURLs []string `koanf:"api_urls"`
	// CAFile is an optional PEM file of certificate authorities trusted,
	// besides the system's, for an https api_url (a daemon with a
	// self-signed or private-CA certificate). The daemon's certificate is
	// always verified; there is no way to skip it.
	CAFile string `koanf:"ca_file"`
	// SpoolDir holds samples not yet delivered; SpoolMaxBytes bounds it.
	SpoolDir      string   `koanf:"spool_dir"`
	SpoolMaxBytes ByteSize `koanf:"spool_max_bytes"`
	// SendInterval is the pause between deliveries while the daemon answers.
	SendInterval time.Duration `koanf:"send_interval"`
	// LogLevel is trace, debug, info, warn or error; LogJSON selects JSON lines.
	LogLevel string `koanf:"log_level"`
	LogJSON  bool   `koanf:"log_json"`
	// Plugins configures the built-in plugins by name; all four are
	// present after loading.
	Plugins map[string]PluginConfig `koanf:"plugins"`
	// Exec lists command plugins.
	Exec []ExecConfig `koanf:"exec"`
}

// MaxDaemons bounds the address lists (api_urls, servers_ipv4,
// servers_ipv6).
const MaxDaemons = 16

// listKeys are the keys holding address lists; from the environment they
// are written separated by commas or spaces
// (HBC_API_URLS="http://a:50004,http://b:50004").
var listKeys = map[string]bool{"api_urls": true, "servers_ipv4": true, "servers_ipv6": true}

// DaemonURLs returns the daemons' HTTP base URLs in order of preference:
// APIURLs, or APIURL alone; none when samples are not delivered.
func (c Config) DaemonURLs() []string {
	if len(c.APIURLs) > 0 {
		return c.APIURLs
	}
	if c.APIURL != "" {
		return []string{c.APIURL}
	}
	return nil
}

// HeartbeatTarget is one daemon's pair of UDP heartbeat addresses; either
// may be empty, not both.
type HeartbeatTarget struct{ IPv4, IPv6 string }

// HeartbeatTargets returns the daemons heartbeats go to: the i-th entries
// of ServersIPv4 and ServersIPv6 form one target (one heartbeat stream,
// as ServerIPv4 and ServerIPv6 do), or ServerIPv4 and ServerIPv6 alone.
func (c Config) HeartbeatTargets() []HeartbeatTarget {
	v4, v6 := c.ServersIPv4, c.ServersIPv6
	if len(v4) == 0 && c.ServerIPv4 != "" {
		v4 = []string{c.ServerIPv4}
	}
	if len(v6) == 0 && c.ServerIPv6 != "" {
		v6 = []string{c.ServerIPv6}
	}
	out := make([]HeartbeatTarget, max(len(v4), len(v6)))
	for i := range out {
		if i < len(v4) {
			out[i].IPv4 = v4[i]
		}
		if i < len(v6) {
			out[i].IPv6 = v6[i]
		}
	}
	return out
}

// PluginConfig configures a built-in plugin.
type PluginConfig struct {
	Enabled  bool          `koanf:"enabled"`
	Interval time.Duration `koanf:"interval"`
}

// ExecConfig configures a command plugin.
type ExecConfig struct {
	Name     string        `koanf:"name"`
	Command  []string      `koanf:"command"`
	Interval time.Duration `koanf:"interval"`
	Timeout  time.Duration `koanf:"timeout"`
	// Units declares the units of the plugin's metrics: metric path
	// (or last path segment) -> unit of the protocol's vocabulary,
	// nested maps allowed ("workers: {busy: count}" is "workers.busy").
	// Checked and flattened into UnitMap by LoadConfig.
	Units map[string]any `koanf:"units"`
	// UnitMap is Units flattened and checked.
	UnitMap map[string]string `koanf:"-"`
}

// defaults are loaded before the file, so the file and the environment
// override them key by key.
func defaults() map[string]any {
	d := map[string]any{
		"heartbeat_interval": DefaultHeartbeatInterval.String(),
		"spool_dir":          DefaultSpoolDir,
		"spool_max_bytes":    DefaultSpoolMaxBytes,
		"send_interval":      DefaultSendInterval.String(),
		"log_level":          "info",
		"log_json":           false,
	}
	for _, name := range collect.BuiltinNames() {
		interval := DefaultPluginInterval
		if name == collect.Disk {
			interval = DefaultDiskInterval
		}
		d["plugins."+name+".enabled"] = true
		d["plugins."+name+".interval"] = interval.String()
	}
	return d
}

// LoadConfig reads the YAML file at path, applies HBC_ environment
// overrides and defaults, and checks the result. The error lists every
// problem, each naming the file (or environment variable) and the key.
func LoadConfig(path string) (Config, error) {
	return loadConfig(path, os.Environ)
}

func loadConfig(path string, environ func() []string) (Config, error) {
	k := koanf.New(".")
	for key, v := range defaults() {
		if err := k.Set(key, v); err != nil {
			return Config{}, err
		}
	}
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		return Config{}, fmt.Errorf("load %s: %w", path, err)
	}
	src := sources{file: path, env: map[string]string{}}
	err := k.Load(env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: environ,
		TransformFunc: func(name, value string) (string, any) {
			key := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, EnvPrefix), "__", "."))
			src.env[key] = name
			if listKeys[key] {
				return key, strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
			}
			return key, value
		},
	}), nil)
	if err != nil {
		return Config{}, fmt.Errorf("load %s environment: %w", EnvPrefix, err)
	}

	var cfg Config
	var md mapstructure.Metadata
	err = k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.ComposeDecodeHookFunc(durationHook, byteSizeHook, boolHook),
		WeaklyTypedInput: true,
		Metadata:         &md,
		Result:           &cfg,
		TagName:          "koanf",
	}})
	var errs []string
	for _, de := range decodeErrors(err) {
		key := keyName(de.Name())
		errs = append(errs, src.describe(key, errors.Unwrap(de).Error()))
	}
	if err != nil && len(errs) == 0 {
		errs = append(errs, fmt.Sprintf("%s: %v", path, err))
	}
	decodeOK := len(errs) == 0
	for _, u := range md.Unused {
		errs = append(errs, src.describe(keyName(u), "unknown key"))
	}
	if decodeOK {
		errs = append(errs, cfg.check(src)...)
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		return Config{}, fmt.Errorf("%w:\n  %s", ErrInvalidConfig, strings.Join(errs, "\n  "))
	}
	return cfg, nil
}

// sources names where a key's value came from.
type sources struct {
	file string
	env  map[string]string // key → environment variable
}

func (s sources) describe(key, problem string) string {
	for k, name := range s.env {
		if k == key || strings.HasPrefix(k, key+".") || strings.HasPrefix(key, k+"[") {
			return fmt.Sprintf("environment %s (%s): %s", name, key, problem)
		}
	}
	return fmt.Sprintf("%s: %s: %s", s.file, key, problem)
}

var mapIndexRE = regexp.MustCompile(`\[([^\]]*[^\]0-9][^\]]*)\]`)

// keyName turns mapstructure's "plugins[cpu_monitor].interval" into the
// config's own "plugins.cpu_monitor.interval"; list indexes stay: "exec[0]".
func keyName(name string) string { return mapIndexRE.ReplaceAllString(name, ".$1") }

// decodeErrors finds the innermost per-key errors in mapstructure's
// wrapped and joined errors.
func decodeErrors(err error) []*mapstructure.DecodeError {
	switch e := err.(type) {
	case nil:
		return nil
	case interface{ Unwrap() []error }:
		var out []*mapstructure.DecodeError
		for _, inner := range e.Unwrap() {
			out = append(out, decodeErrors(inner)...)
		}
		return out
	case *mapstructure.DecodeError:
		if inner := decodeErrors(e.Unwrap()); len(inner) > 0 {
			return inner
		}
		return []*mapstructure.DecodeError{e}
	default:
		return decodeErrors(errors.Unwrap(err))
	}
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
)

// durationHook reads durations with the daemon's syntax
// (config.ParseDuration): "10s", "1m30s", "2d", or a number of seconds.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType || from == durationType {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		return config.ParseDuration(v)
	case int:
		return time.Duration(v) * time.Second, nil
	case float64:
		return time.Duration(v * float64(time.Second)), nil
	}
	return data, nil
}

// boolHook words the error for a value that is not a boolean.
func boolHook(from, to reflect.Type, data any) (any, error) {
	s, ok := data.(string)
	if to.Kind() != reflect.Bool || !ok {
		return data, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%q is not true or false", s)
	}
	return b, nil
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9,
	"k": 1 << 10, "m": 1 << 20, "g": 1 << 30,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
}

var sizeRE = regexp.MustCompile(`^\s*([0-9]+)\s*([a-zA-Z]*)\s*$`)

func byteSizeHook(from, to reflect.Type, data any) (any, error) {
	if to != byteSizeType {
		return data, nil
	}
	switch v := data.(type) {
	case int, int64, uint64, float64:
		n, err := strconv.ParseFloat(fmt.Sprint(v), 64)
		if err != nil || n != float64(int64(n)) {
			return nil, fmt.Errorf("%v is not a whole number of bytes", v)
		}
		return ByteSize(n), nil
	case string:
		m := sizeRE.FindStringSubmatch(v)
		unit, ok := int64(0), false
		if m != nil {
			unit, ok = sizeUnits[strings.ToLower(m[2])]
		}
		if !ok {
			return nil, fmt.Errorf("%q is not a size (e.g. 67108864, \"64MiB\", \"1GiB\")", v)
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > (1<<62)/unit {
			return nil, fmt.Errorf("%q is too large", v)
		}
		return ByteSize(n * unit), nil
	}
	return data, nil
}

var logLevels = []string{"trace", "debug", "info", "warn", "error"}

// check validates cfg and fills the defaults that depend on other values.
func (c *Config) check(src sources) []string {
	var errs []string
	fail := func(key, format string, args ...any) {
		errs = append(errs, src.describe(key, fmt.Sprintf(format, args...)))
	}

	if c.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			fail("host", "not set and the system host name is unknown: %v", err)
		}
		c.Host = h
	}
	if c.Host != "" && !config.ValidHostName(c.Host) {
		fail("host", "%q must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", c.Host)
	}
	switch {
	case c.EnrollKey != "" && c.Key != "":
		fail("enroll_key", "set key or enroll_key, not both")
	case c.EnrollKey != "":
		if len(c.EnrollKey) < MinKeyBytes {
			fail("enroll_key", "must be at least %d bytes, has %d", MinKeyBytes, len(c.EnrollKey))
		} else if c.Host != "" {
			c.Key = config.Secret(heartbeat.DeriveHostKey(c.EnrollKey.Bytes(), c.Host))
		}
	case len(c.Key) < MinKeyBytes:
		fail("key", "must be at least %d bytes, has %d", MinKeyBytes, len(c.Key))
	}
	checkList := func(single, list string, n int, value string) {
		switch {
		case n > 0 && value != "":
			fail(list, "set %s or %s, not both", single, list)
		case n > MaxDaemons:
			fail(list, "lists %d daemons, at most %d", n, MaxDaemons)
		}
	}
	checkList("server_ipv4", "servers_ipv4", len(c.ServersIPv4), c.ServerIPv4)
	checkList("server_ipv6", "servers_ipv6", len(c.ServersIPv6), c.ServerIPv6)
	checkList("api_url", "api_urls", len(c.APIURLs), c.APIURL)
	if c.ServerIPv4 == "" && c.ServerIPv6 == "" && len(c.ServersIPv4) == 0 && len(c.ServersIPv6) == 0 {
		fail("server_ipv4", "set server_ipv4, server_ipv6 or both (or the lists servers_ipv4, servers_ipv6)")
	}
	checkAddrs := func(key string, addrs []string, v6 bool, list bool) {
		seen := map[string]bool{}
		for i, a := range addrs {
			k := key
			if list {
				k = fmt.Sprintf("%s[%d]", key, i)
			}
			if err := checkUDPAddr(a, v6); err != nil {
				fail(k, "%v", err)
			} else if seen[a] {
				fail(k, "%q is listed twice", a)
			}
			seen[a] = true
		}
	}
	if c.ServerIPv4 != "" {
		checkAddrs("server_ipv4", []string{c.ServerIPv4}, false, false)
	}
	if c.ServerIPv6 != "" {
		checkAddrs("server_ipv6", []string{c.ServerIPv6}, true, false)
	}
	checkAddrs("servers_ipv4", c.ServersIPv4, false, true)
	checkAddrs("servers_ipv6", c.ServersIPv6, true, true)
	checkInterval := func(key string, d time.Duration) {
		if d < MinInterval {
			fail(key, "%s is below the minimum of %s", d, MinInterval)
		}
	}
	checkInterval("heartbeat_interval", c.HeartbeatInterval)
	if c.HeartbeatInterval > heartbeat.MaxInterval {
		fail("heartbeat_interval", "%s is above the maximum of %s", c.HeartbeatInterval, heartbeat.MaxInterval)
	}
	checkInterval("send_interval", c.SendInterval)

	needsAPI := len(c.Exec) > 0
	for _, name := range slices.Sorted(maps.Keys(c.Plugins)) {
		p := c.Plugins[name]
		if _, ok := collect.Builtins[name]; !ok {
			fail("plugins."+name, "unknown built-in plugin (built-ins: %s; run commands with exec)",
				strings.Join(collect.BuiltinNames(), ", "))
			continue
		}
		checkInterval("plugins."+name+".interval", p.Interval)
		needsAPI = needsAPI || p.Enabled
	}
	if c.APIURL == "" && len(c.APIURLs) == 0 && needsAPI {
		fail("api_url", "required while any plugin is enabled (or the list api_urls)")
	}
	if c.APIURL != "" {
		if err := checkAPIURL(c.APIURL); err != nil {
			fail("api_url", "%v", err)
		}
	}
	seenURL := map[string]bool{}
	for i, u := range c.APIURLs {
		key := fmt.Sprintf("api_urls[%d]", i)
		if err := checkAPIURL(u); err != nil {
			fail(key, "%v", err)
		} else if norm := strings.TrimRight(u, "/"); seenURL[norm] {
			fail(key, "%q is listed twice", u)
		} else {
			seenURL[norm] = true
		}
	}
	if c.CAFile != "" {
		if _, err := LoadCAs(c.CAFile); err != nil {
			fail("ca_file", "%v", err)
		}
	}
	if c.SpoolDir == "" {
		fail("spool_dir", "must not be empty")
	}
	if c.SpoolMaxBytes < MinSpoolMaxBytes {
		fail("spool_max_bytes", "%d is below the minimum of %d (1MiB)", c.SpoolMaxBytes, MinSpoolMaxBytes)
	}
	if !slices.Contains(logLevels, strings.ToLower(c.LogLevel)) {
		fail("log_level", "%q must be one of %s", c.LogLevel, strings.Join(logLevels, ", "))
	}

	seen := map[string]bool{}
	for i := range c.Exec {
		e := &c.Exec[i]
		key := fmt.Sprintf("exec[%d]", i)
		switch {
		case protocol.ValidatePlugin(e.Name) != nil:
			fail(key+".name", "%q must be lower case letters, digits and '_', starting with a letter (at most 64)", e.Name)
		case collect.Builtins[e.Name] != nil:
			fail(key+".name", "%q is a built-in plugin name", e.Name)
		case e.Name == protocol.AgentPlugin:
			fail(key+".name", "%q is reserved for the agent's own health report", e.Name)
		case seen[e.Name]:
			fail(key+".name", "%q is used by another exec plugin", e.Name)
		}
		seen[e.Name] = true
		if len(e.Command) == 0 || e.Command[0] == "" {
			fail(key+".command", "must list the program and its arguments, e.g. [\"/usr/local/bin/check\", \"-json\"]")
		} else if _, err := exec.LookPath(e.Command[0]); err != nil {
			fail(key+".command", "%v", err)
		}
		if e.Interval == 0 {
			e.Interval = DefaultExecInterval
		}
		checkInterval(key+".interval", e.Interval)
		if e.Timeout == 0 {
			e.Timeout = min(DefaultExecTimeout, e.Interval)
		}
		if e.Timeout <= 0 || e.Timeout > e.Interval {
			fail(key+".timeout", "%s must be positive and at most the interval (%s)", e.Timeout, e.Interval)
		}
		if len(e.Units) > 0 {
			units, err := flattenUnits(e.Units)
			if err == nil {
				err = protocol.ValidatePluginUnits(units)
			}
			if err != nil {
				fail(key+".units", "%s", strings.TrimPrefix(err.Error(), protocol.ErrInvalid.Error()+": "))
			} else {
				e.UnitMap = units
			}
		}
	}
	return errs
}

// flattenUnits turns an exec plugin's units, nested maps allowed, into
// metric path -> unit.
func flattenUnits(in map[string]any) (map[string]string, error) {
	out := map[string]string{}
	var walk func(prefix string, m map[string]any, depth int) error
	walk = func(prefix string, m map[string]any, depth int) error {
		if depth > protocol.MaxSampleDepth {
			return fmt.Errorf("nested deeper than %d levels", protocol.MaxSampleDepth)
		}
		for k, v := range m {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			switch x := v.(type) {
			case string:
				out[p] = x
			case nil:
				out[p] = ""
			case map[string]any:
				if err := walk(p, x, depth+1); err != nil {
					return err
				}
			default:
				return fmt.Errorf("unit of %q must be a unit name (a string, e.g. \"bytes\"), got %v", p, v)
			}
		}
		return nil
	}
	if err := walk("", in, 1); err != nil {
		return nil, err
	}
	return out, nil
}

func checkUDPAddr(addr string, v6 bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		example := "127.0.0.1:50003"
		if v6 {
			example = "[::1]:50003"
		}
		return fmt.Errorf("%q is not host:port (e.g. %s)", addr, example)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port must be 1-65535", addr)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil // a name, resolved for its address family when sending
	}
	if v6 && (!ip.Is6() || ip.Is4In6()) {
		return fmt.Errorf("%q is not an IPv6 address", addr)
	}
	if !v6 && !ip.Is4() {
		return fmt.Errorf("%q is not an IPv4 address", addr)
	}
	return nil
}

func checkAPIURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("%q must be an http:// or https:// URL, e.g. http://127.0.0.1:50004", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must be a base URL without query or fragment", raw)
	}
	return nil
}

// LoadCAs returns the system's certificate pool plus the certificates of
// the PEM file at path.
func LoadCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
