// Package record holds the persisted forms of the alert domain: alert
// states, silences, episodes and the samples the evaluator reads. Package
// alert owns them (it re-exports each under the same name) and declares
// the repository interfaces that use them; storage backends (core/store
// for SQLite) import this package to implement those interfaces, so they
// depend on these plain values and never on the evaluator, and alert's own
// tests can run against the real store without an import cycle.
package record

import "github.com/hbdmon/hbd/sdk/level"

// Key names one alert state: a host and a metric path.
type Key struct{ Host, Metric string }

// SavedState is the persisted form of one (host, metric path) alert state.
// Times are unix seconds; LastNotified is 0 when nothing was sent for the
// current level episode.
type SavedState struct {
	Host              string
	Metric            string
	Level             level.Level
	Since             float64
	LastValue         float64
	LastCheck         float64
	NotificationCount int
	LastNotified      float64
	// NotifiedLevel is the level of the last notification sent (any
	// episode), so a recovery can say what it recovered from.
	NotifiedLevel level.Level
	Acknowledged  bool
	AckBy         string
	Flapping      bool
	// Detail is what produced LastValue when it is not a plain number, e.g.
	// the heartbeat state ("DOWN") of a heartbeat.* metric.
	Detail string
	// EpisodeStart is when the current alert episode began (the metric
	// left OK); 0 while OK.
	EpisodeStart float64
	// PrevLevel is the level before the current one; LastKind the kind of
	// the last notification; LastEpisode the start of the episode that
	// ended last (a recovery belongs to it).
	PrevLevel   level.Level
	LastKind    string
	LastEpisode float64
}

// Silence is an active silence: notifications of every (host, metric path)
// matching both globs are held back until Until (unix seconds). Level
// changes are still evaluated and journaled, and a non-OK level nobody was
// told about is notified when the silence ends.
type Silence struct {
	ID      string  `json:"id"`
	Host    string  `json:"host"`
	Metric  string  `json:"metric"`
	Created float64 `json:"created"`
	// Starts is when the silence takes effect (unix seconds); a silence
	// scheduled for later holds nothing back before it.
	Starts    float64 `json:"starts"`
	Until     float64 `json:"until"`
	CreatedBy string  `json:"created_by"`
	Comment   string  `json:"comment"`
}

// Episode is one alert episode of a (host, metric path), from the moment
// it left OK until it was OK again (see package alert). Times are unix seconds.
type Episode struct {
	// ID orders episodes that started at the same time; set by reads only.
	ID     int64
	Host   string
	Metric string
	Start  float64
	// End is when the metric was OK again; 0 while the episode is open.
	End float64
	// WorstLevel is the most severe level of the episode (by level.Level's
	// Rank: CRITICAL over WARNING over UNKNOWN).
	WorstLevel level.Level
	// Peak is the worst value seen (the highest, or the lowest for a
	// `below` threshold); HasPeak is false when no value was seen (an
	// episode spent UNKNOWN).
	Peak    float64
	HasPeak bool
	// AckBy is who acknowledged the episode last ("" when nobody did).
	AckBy string
	// Text is the episode's worst moment in words.
	Text string
}

// Open reports whether the episode has not ended.
func (ep Episode) Open() bool { return ep.End == 0 }

// EpisodeCursor is a position in the newest-first order of episodes: the
// start and id of the last episode of a page.
type EpisodeCursor struct {
	Start float64
	ID    int64
}

// Episode states an EpisodeQuery selects.
const (
	EpisodesAll      = ""
	EpisodesOpen     = "open"
	EpisodesResolved = "resolved"
)

// EpisodeQuery selects episodes. Zero fields mean no filter.
type EpisodeQuery struct {
	// Host selects one host.
	Host string
	// Hosts, when non-nil, selects only these hosts (access filtering).
	Hosts []string
	// Since and Until select the episodes that overlap [Since, Until]:
	// started at or before Until and not ended before Since. Until 0 means
	// no upper bound.
	Since, Until float64
	// State is EpisodesAll, EpisodesOpen or EpisodesResolved.
	State string
	// After continues a newest-first listing after this position.
	After *EpisodeCursor
	// Limit bounds the result (default 50).
	Limit int
}

// Sample is one plugin's reading of a host as the evaluator takes it:
// flattened metric paths and their values, parallel slices.
type Sample struct {
	Plugin    string
	Timestamp float64 // unix seconds
	Paths     []string
	Values    []float64
}
