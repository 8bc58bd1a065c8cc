package config

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/hbdmon/hbd/core/glob"
	"github.com/hbdmon/hbd/core/safetext"
	"github.com/hbdmon/hbd/sdk/level"
)

var (
	hostNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	userNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)
	chanNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	sha256RE   = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	bcryptRE   = regexp.MustCompile(`^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$`)
)

// ValidHostName reports whether a host name is acceptable everywhere
// (config, heartbeats, ingestion, URLs).
func ValidHostName(s string) bool { return hostNameRE.MatchString(s) }

// ValidUserName reports whether a user name is acceptable.
func ValidUserName(s string) bool { return userNameRE.MatchString(s) }

// ValidChannelName reports whether a channel name is acceptable.
func ValidChannelName(s string) bool { return chanNameRE.MatchString(s) }

// ValidLevel reports whether s is one of the four alert levels (a
// channel's min_level): a valid level.Level.
func ValidLevel(s string) bool { return level.Level(s).Valid() }

// validate checks every key; the first problem is returned, keys visited in
// a stable order so the same file always reports the same error.
func (c *Config) validate() error {
	bad := func(key, format string, a ...any) error {
		return &Error{Key: key, Msg: fmt.Sprintf(format, a...)}
	}
	for _, p := range []struct {
		key  string
		v    int
		zero bool
	}{{"hbd_port", c.HBDPort, false}, {"ws_port", c.WSPort, true}, {"wss_port", c.WSSPort, true}, {"hb_port", c.HBPort, false}} {
		if p.v < 0 || p.v > 65535 || (p.v == 0 && !p.zero) {
			return bad(p.key, "must be a port between 1 and 65535, got %d", p.v)
		}
	}
	for _, l := range []struct {
		key string
		v   int
	}{{"ws_max_clients", c.WSMaxClients}, {"ws_max_clients_per_user", c.WSMaxPerUser}} {
		if l.v < 1 || l.v > MaxWSClients {
			return bad(l.key, "must be between 1 and %d, got %d", MaxWSClients, l.v)
		}
	}
	if err := c.validateMaintenance(); err != nil {
		return err
	}
	if err := c.validateStatusPage(); err != nil {
		return err
	}
	if c.MetricsMaxValues < 0 || c.MetricsMaxValues > MaxMetricsValues {
		return bad("metrics_max_values", "must be between 0 (none) and %d, got %d", MaxMetricsValues, c.MetricsMaxValues)
	}
	if c.WSSPort != 0 {
		if c.WSSPem == "" {
			return bad("wss_pem", "required when wss_port is set")
		}
		if c.WSSKey == "" {
			return bad("wss_key", "required when wss_port is set")
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return bad("tls_cert", "tls_cert and tls_key go together: set both for HTTPS on hbd_port, or neither")
	}
	if cert, key := c.TLSFiles(); cert != "" {
		if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
			return bad("tls_cert", "cannot load the certificate and key (%s, %s): %v", cert, key, err)
		}
	}
	if c.DataDir == "" {
		return bad("data_dir", "must not be empty")
	}
	if err := c.validateStore(); err != nil {
		return err
	}
	if err := c.validateCluster(); err != nil {
		return err
	}
	if c.SampleHistory < 1 || c.SampleHistory > 100000 {
		return bad("sample_history", "must be between 1 and 100000, got %d", c.SampleHistory)
	}
	if c.Retention < 0 {
		return bad("retention", "must not be negative")
	}
	if err := c.validateMemoryLimit(); err != nil {
		return err
	}
	switch strings.ToLower(c.LogLevel) {
	case "trace", "debug", "info", "warn", "error":
	default:
		return bad("log_level", "must be one of trace, debug, info, warn, error; got %q", c.LogLevel)
	}
	for _, d := range []struct {
		name string
		list []string
	}{{"allow", c.ChannelDestinations.Allow}, {"deny", c.ChannelDestinations.Deny}} {
		key, list := "channel_destinations."+d.name, d.list
		if len(list) > MaxDestinations {
			return bad(key, "at most %d entries", MaxDestinations)
		}
		for _, e := range list {
			if _, err := ParsePrefix(e); err != nil {
				return bad(key, "%q is not a network (e.g. 10.0.0.0/8) or an address", e)
			}
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(c.PublicURL, " \t\r\n") {
			return bad("public_url", "must be an http:// or https:// URL without user, query or fragment, e.g. https://hbd.example.com")
		}
		c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < MinKeyBytes {
		return bad("metrics_token", "must be at least %d bytes", MinKeyBytes)
	}
	if c.EnrollKey != "" && len(c.EnrollKey) < MinKeyBytes {
		return bad("enroll_key", "must be at least %d bytes", MinKeyBytes)
	}
	for _, name := range sortedKeys(c.PluginChecksums) {
		if !strings.HasPrefix(name, "hbd-notifier-") || strings.ContainsRune(name, filepath.Separator) {
			return bad("plugin_checksums."+name, "must name a binary hbd-notifier-* in plugins_dir")
		}
		if !sha256RE.MatchString(c.PluginChecksums[name]) {
			return bad("plugin_checksums."+name, "must be a hex SHA-256 (64 characters)")
		}
	}
	if err := validateThresholds("thresholds", c.Thresholds); err != nil {
		return err
	}
	a := c.Alerting
	if a.StaleAfter < 0 {
		return bad("alerting.stale_after", "must not be negative")
	}
	if a.ForgetAfter < 0 {
		return bad("alerting.forget_after", "must not be negative (0 never forgets)")
	}
	if a.ForgetAfter > 0 && a.StaleAfter > 0 && a.ForgetAfter < a.StaleAfter {
		return bad("alerting.forget_after", "must be at least alerting.stale_after (%s), got %s", a.StaleAfter, a.ForgetAfter)
	}
	if a.Renotify < 0 {
		return bad("alerting.renotify", "must not be negative (0 disables renotify)")
	}
	if lv := a.HeartbeatLate; lv != HeartbeatLateNone && !isProblem(lv) {
		return bad("alerting.heartbeat_late", "must be none, WARNING or CRITICAL, got %q", lv)
	}
	if lv := a.HeartbeatDown; !isProblem(lv) {
		return bad("alerting.heartbeat_down", "must be WARNING or CRITICAL, got %q", lv)
	}
	if a.FlapCount < 2 {
		return bad("alerting.flap_count", "must be at least 2")
	}
	if a.FlapWindow <= 0 {
		return bad("alerting.flap_window", "must be positive")
	}
	if c.MaxDynamicHosts < 0 {
		return bad("max_dynamic_hosts", "must not be negative (0 refuses every self-registration)")
	}
	if c.Auth.Open && len(c.Users) > 0 {
		return bad("auth.open", "is true but users are configured: remove auth.open or the users")
	}
	if c.Auth.SessionTTL < 0 {
		return bad("auth.session_ttl", "must be positive")
	}
	if c.Auth.MinPasswordLength < 1 || c.Auth.MinPasswordLength > 128 {
		return bad("auth.min_password_length", "must be between 1 and 128")
	}
	for _, name := range sortedKeys(c.Users) {
		u := c.Users[name]
		key := "users." + name
		if !ValidUserName(name) {
			return bad(key, "user name must match %s", userNameRE)
		}
		if !bcryptRE.MatchString(u.PasswordHash) {
			return bad(key+".password_hash", "must be a bcrypt hash (make one with `hbd hash-password`)")
		}
		if !safetext.Valid(u.DisplayName) {
			return bad(key+".display_name", "must be printable text (no control or bidirectional formatting characters)")
		}
	}
	for _, name := range sortedKeys(c.Watchhosts) {
		h := c.Watchhosts[name]
		key := "watchhosts." + name
		if !ValidHostName(name) {
			return bad(key, "host name must match %s", hostNameRE)
		}
		if !CanonicalHostName(name) {
			return bad(key, "host names are compared as DNS names: write it in lower case without a trailing dot (%q)", strings.TrimSuffix(strings.ToLower(name), "."))
		}
		if len(h.Key) < MinKeyBytes {
			return bad(key+".key", "must be at least %d bytes", MinKeyBytes)
		}
		if h.Timeout < 0 {
			return bad(key+".timeout", "must be positive")
		}
		if len(c.Users) > 0 {
			if h.Owner != "" {
				if _, ok := c.Users[h.Owner]; !ok {
					return bad(key+".owner", "unknown user %q", h.Owner)
				}
			}
			for role, list := range map[string][]string{"managers": h.Managers, "monitors": h.Monitors} {
				for _, u := range list {
					if _, ok := c.Users[u]; !ok {
						return bad(key+"."+role, "unknown user %q", u)
					}
				}
			}
		}
		if err := validateThresholds(key+".thresholds", h.Thresholds); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(c.Channels) {
		ch := c.Channels[name]
		key := "notification_channels." + name
		if !ValidChannelName(name) {
			return bad(key, "channel name must match %s", chanNameRE)
		}
		if ch.Type == "" {
			return bad(key+".type", "required")
		}
		for _, k := range sortedKeys(ch.Fields) {
			if strings.HasPrefix(k, "_") {
				return bad(key+"."+k, "keys starting with '_' are reserved for the daemon")
			}
		}
		if !ValidLevel(ch.MinLevel) {
			return bad(key+".min_level", "must be OK, UNKNOWN, WARNING or CRITICAL, got %q", ch.MinLevel)
		}
		for _, h := range ch.Hosts {
			if _, err := glob.Compile(h); err != nil {
				return bad(key+".hosts", "%v", err)
			}
		}
		if ch.Owner != "" && len(c.Users) > 0 {
			if _, ok := c.Users[ch.Owner]; !ok {
				return bad(key+".owner", "unknown user %q", ch.Owner)
			}
		}
	}
	return nil
}

func validateThresholds(prefix string, ts map[string]Threshold) error {
	for _, pat := range sortedKeys(ts) {
		t := ts[pat]
		key := prefix + "." + pat
		g, err := glob.Compile(pat)
		if err != nil {
			return &Error{Key: key, Msg: fmt.Sprintf("invalid metric glob: %v", err)}
		}
		if strings.HasPrefix(pat, "heartbeat.") {
			// The heartbeat metrics follow alerting.heartbeat_down and
			// heartbeat_late; only the clock offset takes a threshold, in
			// milliseconds either way.
			if !g.Match(clockOffsetMetric) {
				return &Error{Key: key, Msg: "heartbeat metrics take no thresholds except " + clockOffsetMetric + " (heartbeat.host, heartbeat.ipv4 and heartbeat.ipv6 follow alerting.heartbeat_down and alerting.heartbeat_late)"}
			}
			if t.Below {
				return &Error{Key: key + ".below", Msg: "the clock offset is compared by its size, ahead or behind; below is not supported"}
			}
			if (t.Warning != nil && *t.Warning < 0) || (t.Critical != nil && *t.Critical < 0) {
				return &Error{Key: key, Msg: "clock offset thresholds are milliseconds and must not be negative"}
			}
		}
		if t.Warning == nil && t.Critical == nil {
			return &Error{Key: key, Msg: "needs warning and/or critical"}
		}
		if t.Warning != nil && t.Critical != nil {
			if !t.Below && *t.Warning > *t.Critical {
				return &Error{Key: key, Msg: fmt.Sprintf("warning (%g) is above critical (%g); for metrics that are bad when low set below: true", *t.Warning, *t.Critical)}
			}
			if t.Below && *t.Warning < *t.Critical {
				return &Error{Key: key, Msg: fmt.Sprintf("with below: true, warning (%g) must not be under critical (%g)", *t.Warning, *t.Critical)}
			}
		}
		if t.For < 0 {
			return &Error{Key: key + ".for", Msg: "must not be negative"}
		}
		if t.Hysteresis < 0 {
			return &Error{Key: key + ".hysteresis", Msg: "must not be negative"}
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// clockOffsetMetric is the metric path of a host's clock offset in
// milliseconds (alert.HeartbeatClockOffset), the one heartbeat metric
// thresholds may name.
const clockOffsetMetric = "heartbeat.clock_offset_ms"

// CanonicalHostName reports whether a valid host name is in the one
// spelling hbd accepts: lower case, no trailing dot. "WEB01" and "web01."
// would otherwise be look-alikes of web01 with a key and history of their
// own.
func CanonicalHostName(name string) bool {
	return name == strings.ToLower(name) && !strings.HasSuffix(name, ".")
}

// isProblem reports whether s is WARNING or CRITICAL, the levels a
// heartbeat alert may take.
func isProblem(s string) bool {
	l := level.Level(s)
	return l == level.Warning || l == level.Critical
}
