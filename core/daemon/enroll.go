package daemon

import (
	"time"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/ratelimit"
)

// keysFor builds the heartbeat and ingestion key lookup of a config:
// watched hosts sign with their key, other hosts with the key derived from
// enroll_key (when set) and are dynamic. Self-registration is bounded: a
// new name must be in canonical spelling (lower case, no trailing dot, so
// "WEB01" or "web01." cannot pose as web01) and is refused once
// max_dynamic_hosts self-registered hosts are known; hosts already known
// go on. Refusals are logged at warn, once a minute per name at most.
func (d *Daemon) keysFor(cfg *config.Config) heartbeat.KeyFunc {
	hosts := make(map[string][]byte, len(cfg.Watchhosts))
	for name, h := range cfg.Watchhosts {
		hosts[name] = h.Key.Bytes()
	}
	if cfg.EnrollKey == "" {
		return heartbeat.KeysFrom(hosts, nil)
	}
	base := heartbeat.KeysFrom(hosts, cfg.EnrollKey.Bytes())
	limit := cfg.MaxDynamicHosts
	return func(host string) ([]byte, bool, bool) {
		k, dyn, ok := base(host)
		if !ok || !dyn {
			return k, dyn, ok
		}
		if !config.CanonicalHostName(host) {
			d.refuseEnroll(host, "self-registered host names must be lower case without a trailing dot")
			return nil, false, false
		}
		// The count first: below the bound (the usual case) the per-packet
		// cost is one counter read, not a lookup of the name.
		if d.Store.DynamicHosts() >= limit {
			if _, known := d.Store.Host(host); !known {
				d.refuseEnroll(host, "max_dynamic_hosts reached")
				return nil, false, false
			}
		}
		return k, dyn, ok
	}
}

// enrollRefusals rate-limits the refusal log lines, per host name.
var enrollRefusals = ratelimit.New[string](time.Minute, 1024)

func (d *Daemon) refuseEnroll(host, why string) {
	dec := enrollRefusals.Allow(host, time.Now())
	if !dec.OK {
		return
	}
	args := []any{"host", host, "reason", why, "max_dynamic_hosts", d.Config().MaxDynamicHosts}
	if dec.Suppressed > 0 {
		args = append(args, "suppressed", dec.Suppressed)
	}
	if dec.Overflow {
		args = append(args, "note", "many names refused; one line for all")
	}
	d.log.Warn("self-registration refused", args...)
}
