// Package config reads hbd.yaml (plus HBD_ environment overrides) once into
// typed structs and validates them. Nothing else in the daemon reads koanf:
// every package receives the *Config (or the piece it needs) from here.
package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/hbdmon/hbd/sdk/level"
)

// Defaults for keys left out of the file.
const (
	DefaultHBDPort       = 50004
	DefaultWSPort        = 50005
	DefaultHBPort        = 50003
	DefaultSampleHistory = 100
	DefaultRetention     = 30 * 24 * time.Hour
	DefaultHostTimeout   = 30 * time.Second
	DefaultStaleAfter    = 5 * time.Minute
	DefaultForgetAfter   = 24 * time.Hour
	DefaultRenotify      = time.Hour
	DefaultSessionTTL    = 24 * time.Hour
	DefaultFlapCount     = 6
	DefaultFlapWindow    = 10 * time.Minute
	DefaultMaxDynamic    = 1000
	MinKeyBytes          = 32
)

// Live feed client limits: the defaults of ws_max_clients and
// ws_max_clients_per_user, and the largest value either accepts.
const (
	DefaultWSMaxClients = 5000
	// DefaultMetricsMaxValues and MaxMetricsValues: metrics_max_values.
	DefaultMetricsMaxValues = 20000
	MaxMetricsValues        = 1000000
	DefaultWSMaxPerUser     = 16
	MaxWSClients            = 1000000
)

// Config is the whole daemon configuration. It is immutable once loaded: a
// SIGHUP reload builds a new *Config and swaps it in atomically.
type Config struct {
	// File is the path the config was read from (not a key).
	File string `koanf:"-"`

	HBDHost  string `koanf:"hbd_host"`
	HBDPort  int    `koanf:"hbd_port"`
	WSPort   int    `koanf:"ws_port"`
	WSSPort  int    `koanf:"wss_port"`
	CertPath string `koanf:"cert_path"`
	WSSPem   string `koanf:"wss_pem"`
	WSSKey   string `koanf:"wss_key"`
	HBPort   int    `koanf:"hb_port"`
	// WSMaxClients bounds the live feed's concurrent clients (more get
	// 503), WSMaxPerUser those of one user (in open mode, of one address;
	// more get 429). A reload applies them to the next connection;
	// connected clients stay.
	WSMaxClients int `koanf:"ws_max_clients"`
	// MetricsMaxValues bounds the hbd_metric_value series /metrics
	// exports (one per host, plugin and metric path); 0 exports none.
	MetricsMaxValues int `koanf:"metrics_max_values"`
	WSMaxPerUser     int `koanf:"ws_max_clients_per_user"`
	// TLSCert and TLSKey, when set, make hbd_port serve HTTPS (API, pages
	// and the same-origin live feed) with this PEM certificate chain and
	// key; relative paths are relative to cert_path. They may name the
	// wss_pem and wss_key files. Reloaded on SIGHUP.
	TLSCert string `koanf:"tls_cert"`
	TLSKey  string `koanf:"tls_key"`
	// HBListen4 and HBListen6 are the addresses the heartbeat sockets bind
	// on; "" disables that family.
	HBListen4 string `koanf:"hb_listen4"`
	HBListen6 string `koanf:"hb_listen6"`

	DataDir         string            `koanf:"data_dir"`
	PluginsDir      string            `koanf:"plugins_dir"`
	PluginChecksums map[string]string `koanf:"plugin_checksums"`
	SampleHistory   int               `koanf:"sample_history"`
	Retention       time.Duration     `koanf:"retention"`
	// MemoryLimit is the Go runtime's soft memory limit ("768MiB";
	// "off": none); the GOMEMLIMIT environment variable wins over it.
	MemoryLimit string `koanf:"memory_limit"`
	// Store selects the database: SQLite in data_dir (default) or
	// PostgreSQL (store.go).
	Store Store `koanf:"store"`
	// Cluster runs several daemons on one PostgreSQL database with one
	// leader (cluster.go); off by default.
	Cluster Cluster `koanf:"cluster"`

	// AllowedHosts are extra names under which the daemon is reached
	// (its DNS name behind a proxy, say). In open mode a request whose
	// Host header is none of the daemon's own names or addresses nor one
	// of these is refused (DNS rebinding); "*" allows any.
	AllowedHosts []string `koanf:"allowed_hosts"`

	// ChannelDestinations restricts where notification channels may
	// connect (see Destinations).
	ChannelDestinations Destinations `koanf:"channel_destinations"`

	// PublicURL is the address people reach the web UI at, e.g.
	// "https://hbd.example.com" (no trailing slash): notifications link
	// to the alert's host page under it. Empty: no links.
	PublicURL string `koanf:"public_url"`

	// MetricsToken, when set, lets a scraper read /metrics with
	// "Authorization: Bearer <token>" without a user session.
	MetricsToken Secret `koanf:"metrics_token"`

	LogLevel string `koanf:"log_level"`
	LogJSON  bool   `koanf:"log_json"`

	EnrollKey    Secret `koanf:"enroll_key"`
	WatchDynamic bool   `koanf:"watch_dynamic"`
	// MaxDynamicHosts bounds how many hosts may register themselves with
	// enroll_key; past it new names are refused (known ones go on).
	MaxDynamicHosts int `koanf:"max_dynamic_hosts"`

	Watchhosts map[string]WatchHost `koanf:"watchhosts"`
	Thresholds map[string]Threshold `koanf:"thresholds"`
	Alerting   Alerting             `koanf:"alerting"`
	Users      map[string]User      `koanf:"users"`
	Auth       Auth                 `koanf:"auth"`
	Channels   map[string]Channel   `koanf:"-"`

	// Maintenance are recurring maintenance windows (maintenance.go).
	Maintenance []Maintenance `koanf:"maintenance"`
	// StatusPage is the opt-in public status page (maintenance.go).
	StatusPage StatusPage `koanf:"status_page"`

	// ExplicitNoHosts and ExplicitNoChannels are true when the file says
	// `watchhosts: {}` or `notification_channels: {}`: the operator means
	// to watch no host or to have no channel (see CheckTransition). They
	// are not keys.
	ExplicitNoHosts    bool `koanf:"-"`
	ExplicitNoChannels bool `koanf:"-"`

	// Warnings are problems that do not stop the daemon (e.g. HBD_
	// environment variables that set no key); it logs them at start.
	Warnings []string `koanf:"-"`
}

// WatchHost is one entry of watchhosts: a host the operator expects.
type WatchHost struct {
	Key        Secret               `koanf:"key"`
	Owner      string               `koanf:"owner"`
	Managers   []string             `koanf:"managers"`
	Monitors   []string             `koanf:"monitors"`
	Timeout    time.Duration        `koanf:"timeout"`
	Thresholds map[string]Threshold `koanf:"thresholds"`
	Notify     []string             `koanf:"notify"`
}

// Threshold is one alert rule keyed by a metric-path glob.
type Threshold struct {
	Warning    *float64 `koanf:"warning"`
	Critical   *float64 `koanf:"critical"`
	Below      bool     `koanf:"below"`
	For        int      `koanf:"for"`
	Hysteresis float64  `koanf:"hysteresis"`
}

// HeartbeatLateNone is the default of alerting.heartbeat_late: a LATE
// connection is shown and journaled but raises no alert level.
const HeartbeatLateNone = "none"

// Alerting holds the evaluator's global settings. ForgetAfter is how long
// a metric may stay UNKNOWN (no data) before its alert state is deleted; 0
// keeps it forever.
type Alerting struct {
	StaleAfter    time.Duration `koanf:"stale_after"`
	ForgetAfter   time.Duration `koanf:"forget_after"`
	Renotify      time.Duration `koanf:"renotify"`
	HeartbeatLate string        `koanf:"heartbeat_late"`
	HeartbeatDown string        `koanf:"heartbeat_down"`
	FlapCount     int           `koanf:"flap_count"`
	FlapWindow    time.Duration `koanf:"flap_window"`
}

// User is a configured account. What users change themselves (display
// name, e-mail, subscriptions, password) lives in an overlay in the store.
type User struct {
	PasswordHash string   `koanf:"password_hash"`
	Admin        bool     `koanf:"admin"`
	DisplayName  string   `koanf:"display_name"`
	Email        string   `koanf:"email"`
	Channels     []string `koanf:"channels"`
}

// Auth holds session and login settings.
type Auth struct {
	// Open confirms open mode (no users, every endpoint without
	// authentication) when the config in force before had users; see
	// CheckTransition.
	Open              bool          `koanf:"open"`
	SessionTTL        time.Duration `koanf:"session_ttl"`
	MinPasswordLength int           `koanf:"min_password_length"`
}

// MaxDestinations bounds each list of channel_destinations.
const MaxDestinations = 256

// Destinations is channel_destinations: where notification channels may
// connect, checked by the notifier plugins on every connection. Channels
// of users who are not admins may not reach loopback, link-local (cloud
// metadata included), unspecified, multicast, private, shared (CGNAT) and
// reserved addresses unless Allow lists them, nor the daemon's own ports
// on this machine even then. Deny applies to every channel, those of the
// config file and of admins included, and wins over Allow. Entries are
// CIDR networks ("10.0.0.0/8") or single addresses.
type Destinations struct {
	Allow []string `koanf:"allow"`
	Deny  []string `koanf:"deny"`
}

// Prefixes returns Allow and Deny parsed (single addresses as /32 or
// /128, IPv4-mapped IPv6 networks in their IPv4 form); entries that do
// not parse are left out (validate refuses them).
func (d Destinations) Prefixes() (allow, deny []netip.Prefix) {
	return parsePrefixes(d.Allow), parsePrefixes(d.Deny)
}

func parsePrefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := ParsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// ParsePrefix parses a channel_destinations entry: a CIDR network or a
// single address.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, err
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("address %q has a zone", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// Channel is a notification channel from the config file. Fields holds the
// type-specific settings (token, url, ...), validated by the type's plugin.
// Which of them are secret only the plugin's schema says, so every value
// is a Secret: none prints (FieldValues reveals them for the registry).
type Channel struct {
	Type     string
	MinLevel string
	Private  bool
	Owner    string
	Hosts    []string
	Fields   map[string]Secret
}

// FieldValues returns the channel's settings with their values revealed,
// for the channel registry and the plugin.
func (c Channel) FieldValues() map[string]string {
	out := make(map[string]string, len(c.Fields))
	for k, v := range c.Fields {
		out[k] = v.Reveal()
	}
	return out
}

// OpenMode reports whether no users are configured, in which case every
// endpoint is open.
func (c *Config) OpenMode() bool { return len(c.Users) == 0 }

// TLSFiles returns the paths of tls_cert and tls_key, relative ones joined
// to cert_path; empty when HTTPS is off.
func (c *Config) TLSFiles() (cert, key string) {
	if c.TLSCert == "" {
		return "", ""
	}
	join := func(p string) string {
		if filepath.IsAbs(p) || c.CertPath == "" {
			return p
		}
		return filepath.Join(c.CertPath, p)
	}
	return join(c.TLSCert), join(c.TLSKey)
}

// HostKey returns the secret of a watched host.
func (c *Config) HostKey(host string) ([]byte, bool) {
	h, ok := c.Watchhosts[host]
	if !ok {
		return nil, false
	}
	return h.Key.Bytes(), true
}

// HostTimeout returns the heartbeat timeout of a host (the default for
// dynamic hosts).
func (c *Config) HostTimeout(host string) time.Duration {
	if h, ok := c.Watchhosts[host]; ok && h.Timeout > 0 {
		return h.Timeout
	}
	return DefaultHostTimeout
}

// defaults returns a Config holding every top-level default; the file and
// the environment are decoded on top of it, so a key that is present (even
// as 0, which disables renotify or the separate WebSocket port) wins.
func defaults() Config {
	return Config{
		HBDPort:          DefaultHBDPort,
		WSPort:           DefaultWSPort,
		HBPort:           DefaultHBPort,
		WSMaxClients:     DefaultWSMaxClients,
		MetricsMaxValues: DefaultMetricsMaxValues,
		WSMaxPerUser:     DefaultWSMaxPerUser,
		HBListen4:        "0.0.0.0",
		HBListen6:        "::",
		DataDir:          "./data",
		Store:            Store{Driver: StoreSQLite},
		SampleHistory:    DefaultSampleHistory,
		Retention:        DefaultRetention,
		MemoryLimit:      DefaultMemoryLimit,
		LogLevel:         "info",
		WatchDynamic:     true,
		MaxDynamicHosts:  DefaultMaxDynamic,
		Alerting: Alerting{
			StaleAfter:    DefaultStaleAfter,
			ForgetAfter:   DefaultForgetAfter,
			Renotify:      DefaultRenotify,
			HeartbeatLate: HeartbeatLateNone,
			HeartbeatDown: string(level.Critical),
			FlapCount:     DefaultFlapCount,
			FlapWindow:    DefaultFlapWindow,
		},
		Auth: Auth{SessionTTL: DefaultSessionTTL, MinPasswordLength: 8},
	}
}

// applyEntryDefaults fills defaults inside map entries, which decoding
// cannot pre-populate.
func (c *Config) applyEntryDefaults() {
	for name, h := range c.Watchhosts {
		if h.Timeout == 0 {
			h.Timeout = DefaultHostTimeout
			c.Watchhosts[name] = h
		}
	}
	for name, ch := range c.Channels {
		if ch.MinLevel == "" {
			ch.MinLevel = string(level.Warning)
			c.Channels[name] = ch
		}
	}
}
