package alert

import (
	"context"

	"github.com/hbdmon/hbd/core/alert/record"
)

// The evaluator's storage. The evaluator keeps its states, silences and
// open episodes in memory and hands their persisted forms (package record,
// re-exported below) to a Repository; *store.Store (SQLite) implements it, and a second
// backend implements the same interfaces without touching this package.
// The store knows nothing of evaluation: it saves and returns these values.

// The persisted forms of the alert domain, declared in package record so
// that storage backends can implement the interfaces below without
// importing the evaluator.
type (
	// Key names one alert state: a host and a metric path.
	Key = record.Key
	// SavedState is the persisted form of one alert state.
	SavedState = record.SavedState
	// Silence is an active silence: notifications of every (host, metric
	// path) matching both globs are held back until Until. Level changes
	// are still evaluated and journaled, and a non-OK level nobody was
	// told about is notified when the silence ends.
	Silence = record.Silence
	// Episode is one alert episode (history.go).
	Episode = record.Episode
	// EpisodeCursor is a position in the newest-first order of episodes.
	EpisodeCursor = record.EpisodeCursor
	// EpisodeQuery selects episodes.
	EpisodeQuery = record.EpisodeQuery
	// Sample is one plugin's reading as the evaluator takes it.
	Sample = record.Sample
)

// Episode states an EpisodeQuery selects.
const (
	EpisodesAll      = record.EpisodesAll
	EpisodesOpen     = record.EpisodesOpen
	EpisodesResolved = record.EpisodesResolved
)

// StateRepository keeps the alert states. Saves are queued in call order
// (a later save of the same key wins); the Sync form waits for the commit.
type StateRepository interface {
	AlertStates(ctx context.Context) ([]SavedState, error)
	SaveAlertStates(save []SavedState, del []Key)
	SaveAlertStatesSync(ctx context.Context, save []SavedState, del []Key) error
}

// SilenceRepository keeps the silences. SaveSilence and DeleteSilenceSync
// wait for the commit; DeleteSilence only queues it.
type SilenceRepository interface {
	Silences(ctx context.Context) ([]Silence, error)
	SaveSilence(ctx context.Context, sl Silence) error
	DeleteSilence(id string)
	DeleteSilenceSync(ctx context.Context, id string) error
}

// HistoryRepository keeps the alert episodes. SaveEpisodes queues inserts
// or updates keyed by (host, metric, start); writes queued later win.
type HistoryRepository interface {
	// OpenEpisodes returns every episode that has not ended, oldest first.
	OpenEpisodes(ctx context.Context) ([]Episode, error)
	SaveEpisodes(eps ...Episode)
}

// HistoryReader lists episodes for the API, newest (latest start) first.
type HistoryReader interface {
	Episodes(ctx context.Context, q EpisodeQuery) ([]Episode, error)
}

// Inventory is what the evaluator reads of hosts and stored samples.
type Inventory interface {
	// IsDynamicHost reports whether host registered itself with the
	// enroll key (watch_dynamic evaluates those).
	IsDynamicHost(host string) bool
	// DynamicHostNames returns every dynamic host the store knows, in no
	// particular order.
	DynamicHostNames() []string
	// DynamicHosts returns how many dynamic hosts the store knows, without
	// listing them (GET /api/0/alerts counts them on every request).
	DynamicHosts() int
	// LatestSamples returns the newest stored sample of each of the named
	// plugins of host, or of every plugin of host when none is named.
	LatestSamples(host string, plugins []string) []Sample
}

// Repository is everything the evaluator stores and reads.
type Repository interface {
	StateRepository
	SilenceRepository
	HistoryRepository
	Inventory
	Journaler
}
