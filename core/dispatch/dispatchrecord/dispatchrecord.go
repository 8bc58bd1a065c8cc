// Package dispatchrecord holds the persisted forms of package dispatch:
// pending deliveries and the delivery accounting of alert episodes.
// Package dispatch owns them and declares the repository interface that
// uses them (dispatch.Repository); storage backends (core/store for
// SQLite) import this leaf package to implement it without importing
// dispatch.
package dispatchrecord

import "time"

// Delivery is one pending notification to one channel. Event is the
// dispatcher's encoding of the event (it holds no channel settings, so no
// secret); NextAt is when the next attempt is due.
type Delivery struct {
	ID       string
	Channel  string
	Event    []byte
	Attempts int
	NextAt   time.Time
	Created  time.Time
	// UserChannel marks a delivery to a channel created through the API.
	// The cluster outbox queues it only while the channel is stored, so a
	// channel deleted through another daemon gets no new deliveries.
	UserChannel bool
}

// EpisodeKey names an alert episode: its host, metric path and start
// (when the metric left OK) in unix milliseconds.
type EpisodeKey struct {
	Host    string
	Metric  string
	StartMs int64
}

// EpisodeDeliveries counts the deliveries of one alert episode. Queued
// counts every delivery ever queued; those neither Delivered nor Failed
// are pending. NoChannel is set when an event of the episode was routed to
// no channel at all.
type EpisodeDeliveries struct {
	EpisodeKey
	Queued, Delivered, Failed int
	NoChannel                 bool
	Updated                   time.Time
}

// SentPair is an (event, channel) pair that was queued once.
type SentPair struct {
	EventID string
	Channel string
	Created time.Time
}

// Claim is a delivery of the cluster outbox claimed by one daemon's
// worker: until the claim expires no other worker takes it. Seq counts
// the delivery's claims; the outcome is recorded only by the claim that
// is still the latest (an expired claim taken over by another worker
// records nothing).
type Claim struct {
	Delivery
	Seq int64
}

// Backlog is how much of the cluster outbox is not yet delivered.
type Backlog struct {
	// Pending counts the deliveries not yet delivered or given up, in the
	// whole cluster: due, waiting for a retry, or being sent.
	Pending int
	// Claimed counts those that a worker of the asking daemon is sending.
	Claimed int
	// Oldest is when the oldest pending delivery was queued (zero when
	// none is).
	Oldest time.Time
}
