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
// user who can see the host, and user channels whose own hosts globs match;
// each kept only when the event's level reaches the channel's min_level. A
// recovery to OK counts as the highest level of the problem it ends.
//
// Channels are named, and a name freed by a delete (or a config reload)
// can be taken by anyone, so a name alone never routes an alert to a
// channel its author did not mean:
//
//   - a user channel only ever receives alerts of hosts its owner can see
//     (channels created in open mode have no owner and are exempt), however
//     it is named: hosts globs, notify list or subscription;
//   - a subscription counts only while the subscriber may see the channel
//     (ChannelVisible): a private channel of someone else is never routed
//     because of another user's stale subscription to its name.
//
// Stale names (subscriptions and notify entries naming a channel that no
// longer exists) are kept where they are written and skipped here.
func (d *Dispatcher) Route(a alert.Event) []string {
	return d.route(a, d.effectiveLevel(a, false))
}

func (d *Dispatcher) route(a alert.Event, level string) []string {
	cfg := d.opts.Config()
	cand := map[string]Channel{}
	for name, cc := range cfg.Channels {
		if d.globs.matchAny(cc.Hosts, a.Host) {
			cand[name] = fromConfig(name, cc)
		}
	}
	// byName adds a channel named by a notify list or a subscription.
	byName := func(name, user string) {
		if _, ok := cand[name]; ok {
			return
		}
		ch, ok := d.channel(name)
		switch {
		case !ok:
			// A deleted channel still named by a subscription or a notify
			// list (CheckConfigChannels reports the latter).
			d.log.Debug("alert routed to a channel that does not exist", "channel", name, "host", a.Host)
		case user != "" && !visibleTo(cfg, user, ch):
			d.log.Debug("subscription to a channel the user cannot see ignored", "channel", name, "user", user, "host", a.Host)
		case !d.ownerSees(cfg, ch, a.Host):
			d.log.Debug("alert not routed to a user channel whose owner cannot see the host", "channel", name, "owner", ch.Owner, "host", a.Host)
		default:
			cand[name] = ch
		}
	}
	if wh, ok := cfg.Watchhosts[a.Host]; ok {
		for _, n := range wh.Notify {
			byName(n, "")
		}
	}
	for _, s := range d.subscribers(cfg, a.Host) {
		if s.User != "" {
			byName(s.Channel, s.User)
		}
	}
	d.mu.RLock()
	for name, uc := range d.user {
		if _, shadowed := cfg.Channels[name]; shadowed || len(uc.Hosts) == 0 {
			continue
		}
		if d.globs.matchAny(uc.Hosts, a.Host) && (uc.Owner == "" || d.canSee(cfg, uc.Owner, a.Host)) {
			cand[name] = fromUser(uc)
		}
	}
	d.mu.RUnlock()

	rank := config.LevelRank(level)
	out := make([]string, 0, len(cand))
	for name, ch := range cand {
		if rank < config.LevelRank(ch.MinLevel) {
			continue
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// ownerSees reports whether ch may receive alerts of host: config channels
// always (the administrator wrote them), user channels when their owner
// can see host or they have no owner (created in open mode).
func (d *Dispatcher) ownerSees(cfg *config.Config, ch Channel, host string) bool {
	return ch.Source == SourceConfig || ch.Owner == "" || d.canSee(cfg, ch.Owner, host)
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

// Subscription is a user's subscription to a channel, by name.
type Subscription struct {
	User    string
	Channel string
}

// subscribers returns the subscriptions of the users who can see host.
func (d *Dispatcher) subscribers(cfg *config.Config, host string) []Subscription {
	if d.opts.Subscribers != nil {
		return d.opts.Subscribers(host)
	}
	var out []Subscription
	for name, u := range cfg.Users {
		if len(u.Channels) > 0 && d.canSee(cfg, name, host) {
			for _, ch := range u.Channels {
				out = append(out, Subscription{User: name, Channel: ch})
			}
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
