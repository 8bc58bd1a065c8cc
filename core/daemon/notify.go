package daemon

import (
	"context"
	"fmt"

	"github.com/hbdmon/hbd/core/auth"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/dispatch"
	"github.com/hbdmon/hbd/core/metrics"
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
	d.Metrics.Add(notifyFamilies(plugins, disp)...)
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

func notifyFamilies(plugins *pluginhost.Host, disp *dispatch.Dispatcher) []metrics.Family {
	counter := func(name, help string, get func() uint64) metrics.Family {
		return metrics.Family{Name: name, Help: help, Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(get())) }}
	}
	return []metrics.Family{
		{Name: "hbd_notifier_plugins", Help: "Notifier plugin processes by binary and type (1 running).", Labels: []string{"binary", "type"},
			Collect: func(emit func(float64, ...string)) {
				for _, p := range plugins.Stats().Plugins {
					v := 0.0
					if p.Running {
						v = 1
					}
					emit(v, p.Binary, p.Type)
				}
			}},
		{Name: "hbd_notifier_plugins_refused", Help: "Binaries in plugins_dir that are not run.",
			Collect: func(emit func(float64, ...string)) { emit(float64(len(plugins.Stats().Refused))) }},
		counter("hbd_notifier_plugin_restarts_total", "Plugin restarts after a crash.", func() uint64 { return plugins.Stats().Restarts }),
		counter("hbd_notifier_plugin_call_errors_total", "Failed plugin calls.", func() uint64 { return plugins.Stats().CallErrors }),
		counter("hbd_notifications_delivered_total", "Notifications delivered.", func() uint64 { return disp.Stats().Delivered }),
		counter("hbd_notification_attempts_failed_total", "Failed delivery attempts.", func() uint64 { return disp.Stats().Failed }),
		counter("hbd_notifications_given_up_total", "Notifications abandoned after their retries.", func() uint64 { return disp.Stats().GaveUp }),
		{Name: "hbd_notifications_pending", Help: "Queued deliveries per channel.", Labels: []string{"channel"},
			Collect: func(emit func(float64, ...string)) {
				for ch, n := range disp.Stats().Pending {
					emit(float64(n), ch)
				}
			}},
	}
}
