package dispatch_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/testutil"
)

// The notification counters carry the channel and its type: one retried
// and then delivered notification counts one failed attempt and one
// delivery on ops_webhook (webhook); a channel that delivered nothing yet
// has its series at 0.
func TestNotificationCountersByChannelAndType(t *testing.T) {
	e := hooksEnv(t, "ops_webhook", "quiet")
	e.rcv["ops_webhook"].Script(http.StatusServiceUnavailable)
	e.d.Dispatch(crit("web01"))
	e.rcv["ops_webhook"].Wait(t, 2, 10*time.Second)
	e.rcv["quiet"].Wait(t, 1, 10*time.Second)
	counters := func() map[string]float64 {
		got := map[string]float64{}
		for _, f := range e.d.Metrics() {
			if f.Labels == nil || f.Labels[0] != "channel" || len(f.Labels) != 2 {
				continue
			}
			f.Collect(func(v float64, lv ...string) { got[f.Name+"{"+strings.Join(lv, ",")+"}"] = v })
		}
		return got
	}
	// A delivery is counted once its outcome is recorded, which follows
	// the receiver's answer: wait for the queue and both deliveries.
	var got map[string]float64
	testutil.Eventually(t, "both deliveries counted and the queue empty", 30*time.Second, func() bool {
		got = counters()
		return len(pending(t, e.st)) == 0 && got["hbd_notifications_delivered_total{ops_webhook,webhook}"] >= 1 && got["hbd_notifications_delivered_total{quiet,webhook}"] >= 1
	})
	want := map[string]float64{
		"hbd_notifications_delivered_total{ops_webhook,webhook}":      1,
		"hbd_notification_attempts_failed_total{ops_webhook,webhook}": 1,
		"hbd_notifications_given_up_total{ops_webhook,webhook}":       0,
		"hbd_notifications_delivered_total{quiet,webhook}":            1,
		"hbd_notification_attempts_failed_total{quiet,webhook}":       0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v; all: %v", k, g, ok, v, got)
		}
	}
}
