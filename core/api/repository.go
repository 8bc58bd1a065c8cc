package api

import (
	"context"

	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/store"
)

// What the API reads and writes of the daemon's storage. *store.Store
// (SQLite) implements Store, and a second backend implements the same
// interfaces without touching this package. The rows are the neutral
// storage records and sentinel errors of package store (store.Sample,
// store.PluginSample, store.PluginSummary, store.HostInfo, store.Message,
// store.MessageQuery; store.ErrNotFound, store.ErrStorage,
// store.ErrTooManySeries, store.ErrTooManyPlugins), which every backend
// returns as they are: the handlers map those errors to status codes.

// SampleWriter stores what agents send (POST /api/v1/ingest).
type SampleWriter interface {
	// EnsureHost records a host the first time it reports (dyn for hosts
	// that registered themselves with the enroll key) and returns whether
	// it is new; a new dynamic host is journaled once. It returns once
	// committed.
	EnsureHost(ctx context.Context, name string, dyn bool) (isNew bool, err error)
	// AppendSamples durably stores a batch of one host's samples, all or
	// none, and returns once committed (an agent resends a batch that was
	// not acknowledged). A sample with the same host, plugin, path set and
	// timestamp as a stored one replaces it, so a resent batch is stored
	// once. It fails with store.ErrTooManySeries or store.ErrTooManyPlugins
	// when the host exceeds its bounds and with an error wrapping
	// store.ErrStorage when the database cannot be written.
	AppendSamples(ctx context.Context, host string, batch []store.PluginSample) error
}

// SampleReader reads stored samples.
type SampleReader interface {
	// Latest returns up to limit recent samples of a host's plugin, newest
	// first, from memory; store.ErrNotFound when there are none.
	Latest(host, plugin string, limit int) ([]store.Sample, error)
	// History returns the persisted samples of a host's plugin with
	// since <= timestamp <= until, newest first, at most limit.
	History(ctx context.Context, host, plugin string, since, until float64, limit int) ([]store.Sample, error)
	// Plugins returns the newest sample and in-memory count of every
	// plugin of a host, by plugin name.
	Plugins(host string) map[string]store.PluginSummary
}

// HostDirectory is what the storage knows of the hosts that reported.
type HostDirectory interface {
	// Host returns what is known of one host; false when it never
	// reported.
	Host(name string) (store.HostInfo, bool)
	// Hosts returns every host that has reported, sorted by name.
	Hosts() []store.HostInfo
}

// JournalReader reads the journal (GET /api/v1/messages and a host's
// messages).
type JournalReader interface {
	// Messages returns the journal entries q selects, newest first.
	Messages(ctx context.Context, q store.MessageQuery) ([]store.Message, error)
}

// HealthReporter tells whether the storage can be written (/healthz).
type HealthReporter interface {
	// Health returns nil while the database can be written, and the last
	// storage failure (wrapping store.ErrStorage) while no write has
	// committed since it.
	Health() error
}

// Store is everything the API reads and writes of the storage; the alert
// episodes (GET /api/v1/alerts/history) are read through
// alert.HistoryReader.
type Store interface {
	SampleWriter
	SampleReader
	HostDirectory
	JournalReader
	HealthReporter
	alert.HistoryReader
}
