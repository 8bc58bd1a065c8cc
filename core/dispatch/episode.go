package dispatch

import "time"

// Delivery status of an alert episode, as EpisodeStatus reports it.
const (
	// EpisodeNotRouted: no notification of the episode was dispatched
	// (nothing was due yet, or it was held back by a silence).
	EpisodeNotRouted = ""
	// EpisodeNoChannel: notifications were due but no channel covers the
	// host and level: nobody was told.
	EpisodeNoChannel = "no channel"
	// EpisodePending: deliveries are queued or being retried.
	EpisodePending = "pending"
	// EpisodeDelivered: at least one delivery succeeded.
	EpisodeDelivered = "delivered"
	// EpisodeFailed: every delivery failed permanently or gave up.
	EpisodeFailed = "failed"
)

// EpisodeStatus reports, for the alert episode of (host, metric) that
// began at episodeStart (alert.Event.EpisodeStart: when the metric left OK),
// how many deliveries succeeded, counting every event of the episode
// (changes, renotifies and the recovery), and the episode's delivery
// status (one of the Episode constants). It is cheap (memory only) and
// safe for concurrent use.
func (d *Dispatcher) EpisodeStatus(host, metric string, episodeStart time.Time) (delivered int, status string) {
	// Contract stub: lands with the liveness work (issue 9).
	return 0, EpisodeNotRouted
}
