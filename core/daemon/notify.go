package daemon

import (
	"context"
	"fmt"

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
	plugins := pluginhost.New(pluginhost.Options{Dir: cfg.PluginsDir, Checksums: cfg.PluginChecksums, Logger: d.log})
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
	disp, err := dispatch.New(dispatch.Options{
		Config: d.Config, Store: d.Store, Channels: reg, Plugins: plugins, Policy: d.Policy, Logger: d.log,
		Subscribers: authSubscriptions{d.Auth},
	})
	if err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	if err := disp.Start(ctx); err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	d.OnClose(func() { disp.Close() })
	d.Notify = disp
	d.Plugins = plugins
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
