package store

import (
	"math"
	"sort"
	"sync"
)

// ring keeps the most recent samples of one host/plugin in columns: one
// timestamp column and one float64 column per metric path, so a stored value
// costs 8 bytes plus its share of the timestamp, not a Go map per sample.
// A path absent from a sample is stored as NaN and left out on read.
type ring struct {
	mu    sync.RWMutex
	paths []string  // sorted metric paths, the column names
	ts    []float64 // len cap; ts[i] of slot i
	vals  []float64 // cap*len(paths); slot i holds vals[i*len(paths):(i+1)*len(paths)]
	head  int       // next slot to write
	n     int       // filled slots
	total uint64    // samples ever appended (for sample_count after trimming)
}

func newRing(capacity int) *ring {
	return &ring{ts: make([]float64, capacity)}
}

// MaxRingColumns bounds the metric paths one host/plugin ring holds. A
// plugin whose keys keep changing would otherwise widen it without end.
const MaxRingColumns = 1024

// columnsFor returns the column index of every path, widening the ring when
// the sample brings paths it has not seen (existing rows get NaN there).
// Past MaxRingColumns it first drops columns no live sample uses, and if
// that is not enough it starts the ring over with the new sample's paths.
func (r *ring) columnsFor(paths []string) []int {
	idx := make([]int, len(paths))
	missing := false
	for i, p := range paths {
		j := sort.SearchStrings(r.paths, p)
		if j < len(r.paths) && r.paths[j] == p {
			idx[i] = j
		} else {
			missing = true
		}
	}
	if !missing {
		return idx
	}
	if len(r.paths)+len(paths) > MaxRingColumns {
		r.compact()
		if len(r.paths)+len(paths) > MaxRingColumns {
			r.paths, r.vals = nil, nil
			r.head, r.n = 0, 0
		}
	}
	merged := append([]string(nil), r.paths...)
	for _, p := range paths {
		j := sort.SearchStrings(merged, p)
		if j == len(merged) || merged[j] != p {
			merged = append(merged, "")
			copy(merged[j+1:], merged[j:])
			merged[j] = p
		}
	}
	capacity := len(r.ts)
	nv := make([]float64, capacity*len(merged))
	for i := range nv {
		nv[i] = math.NaN()
	}
	old := len(r.paths)
	for oi, p := range r.paths {
		ni := sort.SearchStrings(merged, p)
		for s := 0; s < capacity; s++ {
			nv[s*len(merged)+ni] = r.vals[s*old+oi]
		}
	}
	r.paths, r.vals = merged, nv
	for i, p := range paths {
		idx[i] = sort.SearchStrings(r.paths, p)
	}
	return idx
}

// compact drops the columns that hold no value in any live slot.
func (r *ring) compact() {
	w := len(r.paths)
	keep := make([]int, 0, w)
	for c := 0; c < w; c++ {
		for k := 0; k < r.n; k++ {
			slot := (r.head - 1 - k + len(r.ts)) % len(r.ts)
			if !math.IsNaN(r.vals[slot*w+c]) {
				keep = append(keep, c)
				break
			}
		}
	}
	if len(keep) == w {
		return
	}
	paths := make([]string, len(keep))
	vals := make([]float64, len(r.ts)*len(keep))
	for i, c := range keep {
		paths[i] = r.paths[c]
		for slot := range r.ts {
			vals[slot*len(keep)+i] = r.vals[slot*w+c]
		}
	}
	r.paths, r.vals = paths, vals
}

// has reports whether a live slot holds a sample taken at ts.
func (r *ring) has(ts float64) bool {
	if r.n == 0 || ts > r.ts[(r.head-1+len(r.ts))%len(r.ts)] {
		return false // newer than the newest held: the slots are in timestamp order
	}
	for k := 0; k < r.n; k++ {
		if r.ts[(r.head-1-k+len(r.ts))%len(r.ts)] == ts {
			return true
		}
	}
	return false
}

// add adds one sample; paths must be sorted and parallel to values. The
// slots stay in timestamp order: a sample that arrives late (older than
// the newest held) is inserted at its place, and one older than every
// sample of a full ring is not kept in memory (it is in the database). A
// sample whose timestamp the ring already holds (a resent batch) is not
// added twice.
func (r *ring) add(ts float64, paths []string, values []float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.has(ts) {
		return
	}
	r.total++
	capacity := len(r.ts)
	if r.n == capacity && ts < r.ts[r.head] {
		return // the head slot holds the oldest sample of a full ring
	}
	cols := r.columnsFor(paths)
	w := len(r.paths)
	row := r.vals[r.head*w : (r.head+1)*w]
	for i := range row {
		row[i] = math.NaN()
	}
	for i, c := range cols {
		row[c] = values[i]
	}
	r.ts[r.head] = ts
	// Move the new sample back past the newer ones (late arrivals are
	// rare and usually only a few slots late).
	older := r.n
	if r.n == capacity {
		older = capacity - 1 // the head slot's old sample is being replaced
	}
	cur := r.head
	for k := 0; k < older; k++ {
		prev := (cur - 1 + capacity) % capacity
		if r.ts[prev] <= ts {
			break
		}
		r.ts[prev], r.ts[cur] = r.ts[cur], r.ts[prev]
		a, b := r.vals[prev*w:(prev+1)*w], r.vals[cur*w:(cur+1)*w]
		for i := range a {
			a[i], b[i] = b[i], a[i]
		}
		cur = prev
	}
	r.head = (r.head + 1) % capacity
	if r.n < capacity {
		r.n++
	}
}

// latest returns up to limit samples, newest first.
func (r *ring) latest(limit int) []Sample {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if limit <= 0 || limit > r.n {
		limit = r.n
	}
	out := make([]Sample, 0, limit)
	w := len(r.paths)
	for k := 0; k < limit; k++ {
		slot := (r.head - 1 - k + len(r.ts)) % len(r.ts)
		row := r.vals[slot*w : (slot+1)*w]
		s := Sample{Timestamp: r.ts[slot], Paths: make([]string, 0, w), Values: make([]float64, 0, w)}
		for c, v := range row {
			if !math.IsNaN(v) {
				s.Paths = append(s.Paths, r.paths[c])
				s.Values = append(s.Values, v)
			}
		}
		out = append(out, s)
	}
	return out
}

func (r *ring) count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.n
}

// memBytes estimates the bytes the ring's value and timestamp columns hold.
func (r *ring) memBytes() (bytes, values int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return 8*len(r.ts) + 8*len(r.vals), r.n * len(r.paths)
}
