package daemon

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/auth"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/dispatch"
	"github.com/hbdmon/hbd/core/pluginhost"
)

// startNotify starts the notifier plugin host, the channel registry and
// the delivery dispatcher; alert events reach it through d.Notify.
func (d *Daemon) startNotify(ctx context.Context) error {
	cfg := d.Config()
	plugins := pluginhost.New(pluginhost.Options{Dir: cfg.PluginsDir, Checksums: cfg.PluginChecksums, Logger: d.log, Journal: d.Store})
	if err := plugins.Start(ctx); err != nil {
		return fmt.Errorf("plugins_dir: %w", err)
	}
	d.OnClose(func() { plugins.Close() })
	reg, err := channels.New(channels.Options{Config: d.Config, Store: d.Store, Journal: d.Store, Plugins: plugins,
		Policy: d.Policy, Logger: d.log})
	if err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	if err := reg.Start(ctx); err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	opts := dispatch.Options{
		Config: d.Config, Store: d.Store, Channels: reg, Plugins: plugins, Policy: d.Policy, Logger: d.log,
		Subscribers: authSubscriptions{d.Auth},
	}
	if d.Cluster != nil {
		// Any daemon sends (claims from the shared outbox); only the
		// leader queues, fenced by its lease.
		opts.Cluster = &dispatch.Cluster{Node: d.Cluster.Name(), Fence: d.Cluster.Fence()}
		// User channels changed through another daemon: routing,
		// delivery and the API follow within about a second.
		d.OnStart(func(ctx context.Context) { reg.Follow(ctx, d.Store, channels.DefaultFollowInterval) })
	}
	disp, err := dispatch.New(opts)
	if err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	if err := disp.Start(ctx); err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	d.OnClose(func() { disp.Close() })
	// A replaced plugin may be stricter: check the channels of its type.
	plugins.OnTypeChange(func(typ string) { reg.Revalidate(d.svcCtx, typ) })
	d.Notify = disp
	d.Plugins = plugins
	d.API.AddNotifierPlugins(pluginStatus{plugins})
	d.Auth.SetChannels(reg)
	d.API.AddChannels(reg, disp)
	d.OnReload(func(c *config.Config) {
		plugins.SetChecksums(c.PluginChecksums)
		reg.Reload(d.svcCtx)
	})
	d.Metrics.Add(plugins.Metrics()...)
	d.Metrics.Add(disp.Metrics()...)
	return nil
}

// authSubscriptions hands the dispatcher the users' channel subscriptions
// auth keeps (their own changes included); the dispatcher keeps those of
// users who can see the alert's host.
type authSubscriptions struct{ auth *auth.Service }

// Subscriptions returns every (user, channel name) pair.
func (a authSubscriptions) Subscriptions() []dispatch.Subscription {
	var out []dispatch.Subscription
	for _, u := range a.auth.Users() {
		for _, ch := range u.Channels {
			out = append(out, dispatch.Subscription{User: u.Name, Channel: ch})
		}
	}
	return out
}

// pluginStatus adapts the plugin host to the API's notifier plugin list.
type pluginStatus struct{ h *pluginhost.Host }

// NotifierPlugins lists the binaries of plugins_dir, running or not.
func (p pluginStatus) NotifierPlugins() []api.NotifierPluginJSON {
	st := p.h.Stats()
	out := make([]api.NotifierPluginJSON, 0, len(st.Plugins)+len(st.Refused))
	for _, pl := range st.Plugins {
		j := api.NotifierPluginJSON{Binary: pl.Binary, Type: pl.Type, Error: pl.Failing, Failures: pl.Failures,
			Restarts: pl.Restarts, Protocol: pl.Protocol}
		switch {
		case pl.Running:
			j.State = "running"
		case pl.Failing != "":
			j.State = "failing"
		default:
			j.State = "restarting"
		}
		if !pl.FailingSince.IsZero() {
			s := pl.FailingSince.UTC().Format(time.RFC3339)
			j.FailingSince = &s
		}
		out = append(out, j)
	}
	for _, r := range st.Refused {
		out = append(out, api.NotifierPluginJSON{Binary: r.Binary, State: "refused", Error: r.Reason})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Binary < out[j].Binary })
	return out
}
