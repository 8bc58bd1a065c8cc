package dispatch

import (
	"slices"
	"sort"
	"sync"

	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/glob"
	"github.com/hbdmon/hbd/sdk"
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
// A channel without hosts globs (missing or empty) covers every host its
// owner may see: a config channel without owner, and a user channel
// created in open mode (no owner), every host.
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

func (d *Dispatcher) route(a alert.Event, level sdk.Level) []string {
	cand := d.candidates(d.opts.Config(), a.Host, true)
	rank := level.Rank()
	out := make([]string, 0, len(cand))
	for name, ch := range cand {
		if rank < sdk.Level(ch.MinLevel).Rank() {
			continue
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// candidates returns the channels that receive the alerts of host, before
// min_level is applied (see Route). With explain, skipped names are logged
// at debug level.
func (d *Dispatcher) candidates(cfg *config.Config, host string, explain bool) map[string]Channel {
	cand := map[string]Channel{}
	for name, cc := range cfg.Channels {
		ch := fromConfig(name, cc)
		if d.covers(cfg, ch, host) {
			cand[name] = ch
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
			if explain {
				d.log.Debug("alert routed to a channel that does not exist", "channel", name, "host", host)
			}
		case user != "" && !visibleTo(cfg, user, ch):
			if explain {
				d.log.Debug("subscription to a channel the user cannot see ignored", "channel", name, "user", user, "host", host)
			}
		case !d.ownerSees(cfg, ch, host):
			if explain {
				d.log.Debug("alert not routed to a user channel whose owner cannot see the host", "channel", name, "owner", ch.Owner, "host", host)
			}
		default:
			cand[name] = ch
		}
	}
	if wh, ok := cfg.Watchhosts[host]; ok {
		for _, n := range wh.Notify {
			byName(n, "")
		}
	}
	for _, s := range d.subscribers(cfg, host) {
		if s.User != "" {
			byName(s.Channel, s.User)
		}
	}
	d.mu.RLock()
	for name, uc := range d.user {
		if _, shadowed := cfg.Channels[name]; shadowed {
			continue
		}
		if ch := fromUser(uc); d.covers(cfg, ch, host) {
			cand[name] = ch
		}
	}
	d.mu.RUnlock()
	return cand
}

// covers reports whether ch's own hosts globs take the alerts of host: the
// globs match it (for a user channel, only when its owner may see host),
// or ch has none and its owner may see host (every host for a channel
// without owner).
func (d *Dispatcher) covers(cfg *config.Config, ch Channel, host string) bool {
	if len(ch.Hosts) == 0 {
		return ch.Owner == "" || d.canSee(cfg, ch.Owner, host)
	}
	return d.globs.matchAny(ch.Hosts, host) && d.ownerSees(cfg, ch, host)
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
func (d *Dispatcher) effectiveLevel(a alert.Event, record bool) sdk.Level {
	key := a.Host + "\x00" + a.MetricPath
	higher := func(x, y sdk.Level) sdk.Level {
		if y.Rank() > x.Rank() {
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
	if a.Level != sdk.LevelOK {
		if record && a.Level.Rank() > ep.Rank() {
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
		return sdk.LevelOK
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
