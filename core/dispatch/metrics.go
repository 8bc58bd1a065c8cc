package dispatch

import "github.com/hbdmon/hbd/core/metrics"

// Metrics returns the dispatcher's metric families for /metrics:
// deliveries made, failed attempts, notifications given up and the queued
// deliveries of each channel.
func (d *Dispatcher) Metrics() []metrics.Family {
	counter := func(name, help string, get func() uint64) metrics.Family {
		return metrics.Family{Name: name, Help: help, Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(get())) }}
	}
	return []metrics.Family{
		counter("hbd_notifications_delivered_total", "Notifications delivered.", func() uint64 { return d.Stats().Delivered }),
		counter("hbd_notification_attempts_failed_total", "Failed delivery attempts.", func() uint64 { return d.Stats().Failed }),
		counter("hbd_notifications_given_up_total", "Notifications abandoned after their retries.", func() uint64 { return d.Stats().GaveUp }),
		{Name: "hbd_notifications_pending", Help: "Queued deliveries per channel.", Labels: []string{"channel"},
			Collect: func(emit func(float64, ...string)) {
				for ch, n := range d.Stats().Pending {
					emit(float64(n), ch)
				}
			}},
	}
}
