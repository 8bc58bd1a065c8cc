package channels

// Following the other daemons of a cluster: with several daemons on one
// PostgreSQL database, a user channel created, changed or deleted
// through one daemon's API is in the shared Repository at once, but each
// registry holds the user channels in memory (Start loads them). Follow
// keeps a registry in step: it polls the Repository's change counter, one
// tiny read a second, and reloads the user channels (Sync) when it moved.
// Routing, delivery and the API all read the registry, so they follow
// within about a second of the commit. One daemon (SQLite, or PostgreSQL
// without a cluster) does not follow: its registry makes every change.

import (
	"context"
	"maps"
	"slices"
	"time"
)

// DefaultFollowInterval is how often Follow reads the change counter when
// its interval is zero.
const DefaultFollowInterval = time.Second

// followTimeout bounds one round of Follow (the counter read, and a
// reload with its checks).
const followTimeout = 30 * time.Second

// Versioner is the Repository's change counter of the user channels
// (*store.Store on PostgreSQL provides it).
type Versioner interface {
	// UserChannelsVersion returns a number that changes with every
	// committed PutUserChannel or DeleteUserChannel, whichever daemon
	// made it.
	UserChannelsVersion(ctx context.Context) (int64, error)
}

// Follow reads v's change counter every interval (DefaultFollowInterval
// when zero) and, when it differs from the last one read, reloads the
// user channels (Sync), until ctx ends. The first round always reloads,
// which covers changes between Start and Follow. A failed round is
// logged once per outage and tried again on the next tick. Call it after
// Start, on a goroutine of its own.
func (r *Registry) Follow(ctx context.Context, v Versioner, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultFollowInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var last int64
	synced, failing := false, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, followTimeout)
		// The counter is read before the channels: a change committed
		// in between moves it again, and the next round reloads.
		ver, err := v.UserChannelsVersion(rctx)
		if err == nil && (!synced || ver != last) {
			if err = r.Sync(rctx); err == nil {
				last, synced = ver, true
			}
		}
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing:
			failing = true
			r.log.Warn("cannot follow the notification channels of the other daemons; trying again every tick", "every", interval, "error", err)
		case err == nil && failing:
			failing = false
			r.log.Info("following the notification channels of the other daemons again")
		}
	}
}

// Sync reloads the user channels from the Repository, for changes other
// daemons made: a new or changed channel is used from now on (routing,
// delivery, the API; secrets stay masked in every answer) and checked
// again with its type's plugin, flagged as at Start; a removed channel is
// dropped with its problem and the watchers are told (ChannelDeleted), as
// for a deletion through this daemon. Changes are logged, not journaled
// (the daemon that made them journaled them). Sync is serialized with
// CreateChannel, UpdateChannel and DeleteChannel.
func (r *Registry) Sync(ctx context.Context) error {
	r.chMu.Lock()
	chans, err := r.opts.Store.UserChannels(ctx)
	if err != nil {
		r.chMu.Unlock()
		return err
	}
	fresh := make(map[string]Channel, len(chans))
	for _, c := range chans {
		c.Source = SourceUser
		fresh[c.Name] = c
	}
	var added, changed, removed []string
	r.mu.Lock()
	for name, c := range fresh {
		old, ok := r.user[name]
		switch {
		case !ok:
			added = append(added, name)
		case !sameChannel(old, c):
			changed = append(changed, name)
		}
	}
	for name := range r.user {
		if _, ok := fresh[name]; !ok {
			removed = append(removed, name)
			delete(r.problems, name)
		}
	}
	r.user = fresh
	r.mu.Unlock()
	slices.Sort(removed)
	for _, name := range removed {
		for _, w := range r.watching() {
			w.ChannelDeleted(name)
		}
	}
	r.chMu.Unlock()
	if len(added)+len(changed)+len(removed) == 0 {
		return nil
	}
	slices.Sort(added)
	slices.Sort(changed)
	r.log.Info("notification channels changed through another daemon", "created", added, "changed", changed, "deleted", removed)
	r.revalidateUsers(ctx, append(added, changed...), false)
	return nil
}

// sameChannel reports whether a and b are the same stored channel.
func sameChannel(a, b Channel) bool {
	return a.Type == b.Type && a.Owner == b.Owner && a.Private == b.Private && a.MinLevel == b.MinLevel &&
		slices.Equal(a.Hosts, b.Hosts) && maps.Equal(a.Fields, b.Fields) &&
		a.Created.Equal(b.Created) && a.Updated.Equal(b.Updated)
}
