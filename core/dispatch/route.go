package dispatch

import (
	"sort"

	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/sdk/level"
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
//     (the registry's ChannelVisible): a private channel of someone else is never routed
//     because of another user's stale subscription to its name.
//
// Stale names (subscriptions and notify entries naming a channel that no
// longer exists) are kept where they are written and skipped here.
func (d *Dispatcher) Route(a alert.Event) []string {
	return d.route(a, d.effectiveLevel(a, false))
}

func (d *Dispatcher) route(a alert.Event, lv level.Level) []string {
	cand := d.candidates(d.opts.Config(), a.Host, true)
	rank := lv.Rank()
	out := make([]string, 0, len(cand))
	for name, ch := range cand {
		if rank < level.Level(ch.MinLevel).Rank() {
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
func (d *Dispatcher) candidates(cfg *config.Config, host string, explain bool) map[string]channels.Channel {
	cand := map[string]channels.Channel{}
	for _, ch := range d.opts.Channels.Channels() {
		if d.covers(ch, host) {
			cand[ch.Name] = ch
		}
	}
	// byName adds a channel named by a notify list or a subscription.
	byName := func(name, user string) {
		if _, ok := cand[name]; ok {
			return
		}
		ch, ok := d.opts.Channels.Channel(name)
		switch {
		case !ok:
			// A deleted channel still named by a subscription or a notify
			// list (the registry's CheckConfigChannels reports the latter).
			if explain {
				d.log.Debug("alert routed to a channel that does not exist", "channel", name, "host", host)
			}
		case user != "" && !d.opts.Channels.ChannelVisible(user, name):
			if explain {
				d.log.Debug("subscription to a channel the user cannot see ignored", "channel", name, "user", user, "host", host)
			}
		case !d.ownerSees(ch, host):
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
	return cand
}

// covers reports whether ch's own hosts globs take the alerts of host: the
// globs match it (for a user channel, only when its owner may see host),
// or ch has none and its owner may see host (every host for a channel
// without owner).
func (d *Dispatcher) covers(ch channels.Channel, host string) bool {
	if len(ch.Hosts) == 0 {
		return ch.Owner == "" || d.opts.Policy.UserCanSee(ch.Owner, host)
	}
	return d.globs.MatchAny(ch.Hosts, host) && d.ownerSees(ch, host)
}

// ownerSees reports whether ch may receive alerts of host: config channels
// always (the administrator wrote them), user channels when their owner
// can see host or they have no owner (created in open mode).
func (d *Dispatcher) ownerSees(ch channels.Channel, host string) bool {
	return ch.Source == channels.SourceConfig || ch.Owner == "" || d.opts.Policy.UserCanSee(ch.Owner, host)
}

// effectiveLevel is the level min_level is compared with: the event's,
// or for a recovery the highest level of the episode it ends. With record
// it also updates the episode memory.
func (d *Dispatcher) effectiveLevel(a alert.Event, record bool) level.Level {
	key := a.Host + "\x00" + a.MetricPath
	higher := func(x, y level.Level) level.Level {
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
	if a.Level != level.OK {
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
		return level.OK
	}
	return lv
}

// Subscription is a user's subscription to a channel, by name.
type Subscription struct {
	User    string
	Channel string
}

// subscribers returns the subscriptions of the users who can see host:
// those of Options.Subscribers, or of the config file's users when it is
// nil.
func (d *Dispatcher) subscribers(cfg *config.Config, host string) []Subscription {
	var all []Subscription
	if d.opts.Subscribers != nil {
		all = d.opts.Subscribers.Subscriptions()
	} else {
		for _, name := range sortedKeys(cfg.Users) {
			for _, ch := range cfg.Users[name].Channels {
				all = append(all, Subscription{User: name, Channel: ch})
			}
		}
	}
	out := all[:0]
	for _, s := range all {
		if d.opts.Policy.UserCanSee(s.User, host) {
			out = append(out, s)
		}
	}
	return out
}

// Coverage returns, per channel name, the known hosts (KnownHosts) whose
// alerts the channel receives now (Route before min_level), sorted. The
// channel list of the API shows it.
func (d *Dispatcher) Coverage() map[string][]string {
	cfg := d.opts.Config()
	out := map[string][]string{}
	for _, h := range d.KnownHosts() {
		for name := range d.candidates(cfg, h, false) {
			out[name] = append(out[name], h)
		}
	}
	return out
}

// KnownHosts returns, sorted, the hosts the daemon knows: those of
// watchhosts and those that reported (the store's hosts).
func (d *Dispatcher) KnownHosts() []string {
	set := map[string]struct{}{}
	for h := range d.opts.Config().Watchhosts {
		set[h] = struct{}{}
	}
	for _, h := range d.opts.Store.HostNames() {
		set[h] = struct{}{}
	}
	return sortedKeys(set)
}
