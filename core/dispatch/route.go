package dispatch

import (
	"slices"
	"sort"
	"sync"

	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/glob"
)

// maxEpisodes bounds the per-(host, metric) memory of problem levels.
const maxEpisodes = 100000

// Route returns, sorted and without duplicates, the channels that should
// receive a (SPEC section 7): config channels whose hosts globs match the
// host, the host's watchhosts notify list, the subscribed channels of every
// user who can see the host, and user channels whose own hosts globs match
// (when their owner can see the host); each kept only when the event's
// level reaches the channel's min_level. A recovery to OK counts as the
// highest level of the problem it ends.
func (d *Dispatcher) Route(a alert.Event) []string {
	return d.route(a, d.effectiveLevel(a, false))
}

func (d *Dispatcher) route(a alert.Event, level string) []string {
	cfg := d.opts.Config()
	cand := map[string]bool{}
	for name, cc := range cfg.Channels {
		if d.globs.matchAny(cc.Hosts, a.Host) {
			cand[name] = true
		}
	}
	if wh, ok := cfg.Watchhosts[a.Host]; ok {
		for _, n := range wh.Notify {
			cand[n] = true
		}
	}
	for _, n := range d.subscribers(cfg, a.Host) {
		cand[n] = true
	}
	d.mu.RLock()
	for name, uc := range d.user {
		if _, shadowed := cfg.Channels[name]; shadowed || len(uc.Hosts) == 0 {
			continue
		}
		if d.globs.matchAny(uc.Hosts, a.Host) && (uc.Owner == "" || d.canSee(cfg, uc.Owner, a.Host)) {
			cand[name] = true
		}
	}
	d.mu.RUnlock()

	rank := config.LevelRank(level)
	out := make([]string, 0, len(cand))
	for name := range cand {
		ch, ok := d.channel(name)
		if !ok {
			// A deleted channel still named by a subscription or a notify
			// list (CheckConfigChannels reports the latter).
			d.log.Debug("alert routed to a channel that does not exist", "channel", name, "host", a.Host)
			continue
		}
		if rank < config.LevelRank(ch.MinLevel) {
			continue
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// effectiveLevel is the level min_level is compared with: the event's,
// or for a recovery the highest level of the episode it ends. With record
// it also updates the episode memory.
func (d *Dispatcher) effectiveLevel(a alert.Event, record bool) string {
	key := a.Host + "\x00" + a.MetricPath
	higher := func(x, y string) string {
		if config.LevelRank(y) > config.LevelRank(x) {
			return y
		}
		return x
	}
	if record {
		d.mu.Lock()
		defer d.mu.Unlock()
	} else {
		d.mu.RLock()
		defer d.mu.RUnlock()
	}
	ep := d.episode[key]
	if a.Level != config.LevelOK {
		if record && config.LevelRank(a.Level) > config.LevelRank(ep) {
			if len(d.episode) >= maxEpisodes {
				clear(d.episode)
			}
			d.episode[key] = a.Level
		}
		return a.Level
	}
	if record {
		delete(d.episode, key)
	}
	lv := higher(a.PreviousLevel, ep)
	if lv == "" {
		return config.LevelOK
	}
	return lv
}

// canSee reports whether user may see host.
func (d *Dispatcher) canSee(cfg *config.Config, user, host string) bool {
	if d.opts.CanSee != nil {
		return d.opts.CanSee(user, host)
	}
	if cfg.OpenMode() {
		return true
	}
	u, ok := cfg.Users[user]
	if !ok {
		return false
	}
	if u.Admin {
		return true
	}
	wh := cfg.Watchhosts[host]
	return wh.Owner == user || slices.Contains(wh.Managers, user) || slices.Contains(wh.Monitors, user)
}

// subscribers returns the channels subscribed by users who can see host.
func (d *Dispatcher) subscribers(cfg *config.Config, host string) []string {
	if d.opts.Subscribers != nil {
		return d.opts.Subscribers(host)
	}
	var out []string
	for name, u := range cfg.Users {
		if len(u.Channels) > 0 && d.canSee(cfg, name, host) {
			out = append(out, u.Channels...)
		}
	}
	return out
}

// globCache keeps compiled host patterns; invalid ones match nothing
// (config and API validation reject them before they get here).
type globCache struct{ m sync.Map }

func (g *globCache) matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		v, ok := g.m.Load(p)
		if !ok {
			c, _ := glob.Compile(p)
			v, _ = g.m.LoadOrStore(p, c)
		}
		if v.(glob.Pattern).Match(s) {
			return true
		}
	}
	return false
}
