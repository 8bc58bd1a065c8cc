package heartbeat

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/hbdmon/hbd/core/heartbeat/record"

	"github.com/hashicorp/go-hclog"
)

// PersistEvery is how often at most a host's Record is written while it
// keeps sending; a new family is written at once, and everything once more
// at shutdown (Book.Flush).
const PersistEvery = 30 * time.Second

// Record is the stored form of a host's heartbeat families (package
// record, so storage backends need not import this package).
type Record = record.Heartbeats

// ExpectationOf returns what the tracker should expect of the record's host
// from from: the families it used, each last heard at its recorded time.
func ExpectationOf(r Record, from time.Time, dynamic bool) Expectation {
	x := Expectation{Host: r.Host, Dynamic: dynamic, From: from, LastSeen: make(map[Family]time.Time, len(r.Families))}
	for f, ts := range r.Families {
		x.LastSeen[Family(f)] = fromUnix(ts)
	}
	return x
}

func fromUnix(ts float64) time.Time {
	if ts <= 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(ts*1e9))
}

// RecordStore keeps the heartbeat records (*store.Store implements it).
type RecordStore interface {
	// HostHeartbeats returns every stored record.
	HostHeartbeats(ctx context.Context) ([]Record, error)
	// SaveHostHeartbeats queues records for writing, replacing what is
	// stored for their hosts, without waiting: the book may be called on
	// the packet path's behalf. Records queued before the store closes are
	// written.
	SaveHostHeartbeats(records []Record)
	// DeleteHostHeartbeats queues the removal of the hosts' records.
	DeleteHostHeartbeats(hosts ...string)
}

// Book persists what a Tracker knows of each host's families: a host's
// record at most every PersistEvery while only its times move, at once
// when it starts using a family, and all of them once more at Flush.
// Writes are queued to the RecordStore; the packet path (Changed) only
// ever does a non-blocking send. Run owns the book's one goroutine.
type Book struct {
	tr    *Tracker
	st    RecordStore
	log   hclog.Logger
	nudge chan struct{}

	mu    sync.Mutex
	saved map[string]Record // what the store holds
}

// NewBook returns a book writing tr's records to st.
func NewBook(tr *Tracker, st RecordStore, log hclog.Logger) *Book {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Book{tr: tr, st: st, log: log, nudge: make(chan struct{}, 1), saved: map[string]Record{}}
}

// Load reads the stored records (at start and on reload) and remembers
// them as written.
func (b *Book) Load(ctx context.Context) (map[string]Record, error) {
	records, err := b.st.HostHeartbeats(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Record, len(records))
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range records {
		out[r.Host] = r
		b.saved[r.Host] = r
	}
	return out, nil
}

// Changed is a Tracker change observer: a family used for the first time
// since the start gets written at once. It never blocks.
func (b *Book) Changed(ch Change) {
	if ch.Family != "" && ch.From == "" && ch.To == StateUp {
		select {
		case b.nudge <- struct{}{}:
		default:
		}
	}
}

// Run writes changed records every PersistEvery and when nudged, until
// ctx ends.
func (b *Book) Run(ctx context.Context) {
	tick := time.NewTicker(PersistEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			b.save(false)
		case <-b.nudge:
			b.save(true)
		}
	}
}

// Flush writes every changed record (at shutdown, before the store
// closes).
func (b *Book) Flush() { b.save(false) }

// save queues the records that changed since they were last written; with
// newFamiliesOnly, only those whose set of families changed, so a nudge
// does not write every host's times.
func (b *Book) save(newFamiliesOnly bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Record
	for _, hs := range b.tr.Seen() {
		r := Record{Host: hs.Host, Families: make(map[string]float64, len(hs.LastSeen))}
		for f, at := range hs.LastSeen {
			if !at.IsZero() {
				r.Families[string(f)] = float64(at.UnixNano()) / 1e9
			} else {
				r.Families[string(f)] = 0
			}
		}
		old, ok := b.saved[hs.Host]
		if ok && maps.Equal(old.Families, r.Families) {
			continue
		}
		if newFamiliesOnly && ok && sameKeys(old.Families, r.Families) {
			continue
		}
		out = append(out, r)
		b.saved[hs.Host] = r
	}
	if len(out) > 0 {
		b.st.SaveHostHeartbeats(out)
		b.log.Debug("heartbeat records saved", "hosts", len(out))
	}
}

func sameKeys(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

// Forget drops the records of hosts removed from the configuration.
func (b *Book) Forget(hosts []string) {
	if len(hosts) == 0 {
		return
	}
	b.mu.Lock()
	for _, h := range hosts {
		delete(b.saved, h)
	}
	b.mu.Unlock()
	b.st.DeleteHostHeartbeats(hosts...)
}
