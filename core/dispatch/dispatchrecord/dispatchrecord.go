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
