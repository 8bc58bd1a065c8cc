package dispatch

import (
	"context"
	"time"

	"github.com/hbdmon/hbd/core/dispatch/dispatchrecord"
)

// The Dispatcher's storage. The Dispatcher keeps its queues and the
// delivery counts of recent episodes in memory and hands their persisted
// forms (package dispatchrecord) to a Repository; *store.Store (SQLite)
// implements it, and a second backend implements the same interfaces
// without touching this package. The Dispatcher relies on these promises:
// a method that "returns once committed" has made its change durable when
// it returns nil; the queued (non-waiting) writes apply in the order they
// were queued, after every write queued or committed before them, so an
// UpdateDelivery or DeleteDelivery never overtakes the QueueDeliveries
// that inserted its row.

// DeliveryStore keeps the pending deliveries and the accounting of which
// (event, channel) pairs were queued and how each episode's deliveries
// ended.
type DeliveryStore interface {
	// QueueDeliveries queues the deliveries of one event, each to its own
	// channel, and returns once committed. In the same transaction it
	// records each (eventID, channel) pair and adds the number queued to
	// ep's count; a pair recorded before is not queued again, and its
	// delivery's ID is in skipped. A crash loses a delivery and its pair
	// together or neither.
	QueueDeliveries(ctx context.Context, eventID string, ep dispatchrecord.EpisodeKey, ds []dispatchrecord.Delivery) (skipped map[string]bool, err error)
	// PendingDeliveries returns every queued delivery, oldest (Created,
	// then ID) first.
	PendingDeliveries(ctx context.Context) ([]dispatchrecord.Delivery, error)
	// UpdateDelivery queues the recording of a failed attempt (attempt
	// count and when the next one is due) without waiting.
	UpdateDelivery(id string, attempts int, nextAt time.Time)
	// DeleteDelivery queues the removal of a delivery without counting an
	// outcome, without waiting.
	DeleteDelivery(id string)
	// CompleteDelivery removes a delivery and counts its outcome
	// (delivered, or failed for good) in ep, in one transaction, and
	// returns once committed: after a crash a delivery whose outcome was
	// committed is not attempted again.
	CompleteDelivery(ctx context.Context, id string, ep dispatchrecord.EpisodeKey, delivered bool) error
	// DropDelivery queues the removal of a delivery that will not be
	// attempted, counted as failed in ep, without waiting.
	DropDelivery(id string, ep dispatchrecord.EpisodeKey)
	// MarkNoChannel queues the note that an event of ep reached no
	// channel, without waiting.
	MarkNoChannel(ep dispatchrecord.EpisodeKey)
	// EpisodeDeliveryCounts returns the delivery counts of the limit most
	// recently updated episodes, newest first.
	EpisodeDeliveryCounts(ctx context.Context, limit int) ([]dispatchrecord.EpisodeDeliveries, error)
	// SentPairs returns the limit most recently recorded (event, channel)
	// pairs, newest first.
	SentPairs(ctx context.Context, limit int) ([]dispatchrecord.SentPair, error)
	// TrimDeliveryRecords deletes the episode counts last updated before
	// before and the pairs recorded before it whose delivery is no longer
	// queued, returns how many went, and returns once committed.
	TrimDeliveryRecords(ctx context.Context, before time.Time) (int64, error)
}

// Journal records the delivery outcomes users read.
type Journal interface {
	// Journal records msg about host ("" for daemon-wide entries) without
	// waiting for the commit.
	Journal(host, msg string)
}

// HostLister names the hosts that have reported (KnownHosts adds them to
// the configured ones).
type HostLister interface {
	// HostNames returns the name of every host that has reported, sorted.
	HostNames() []string
}

// Repository is everything the Dispatcher stores and reads.
type Repository interface {
	DeliveryStore
	Journal
	HostLister
}
