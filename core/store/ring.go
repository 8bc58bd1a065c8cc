package store

import (
	"encoding/binary"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// ring keeps the most recent samples of one host/plugin in columns: one
// timestamp column and one value column per metric path, so a stored value
// costs at most 8 bytes plus its share of the timestamp, not a Go map per
// sample. Each value column takes the narrowest exact form its values
// allow (see column): a constant costs nothing per sample, a value with
// at most two decimals (what the agent sends) 2 or 4 bytes. A path absent
// from a sample is stored as NaN and left out on read.
type ring struct {
	mu    sync.RWMutex
	paths []string  // sorted metric paths, the column names
	cols  []column  // parallel to paths; each holds len(ts) slots
	ts    []float64 // len cap; ts[i] of slot i
	head  int       // next slot to write
	n     int       // filled slots
	total uint64    // samples ever appended (for sample_count after trimming)
	// mem, once the ring is filed in a store, is the store's running
	// total of ring memory, which add keeps up to date.
	mem *ringMem
}

// ringMem is the running total of the bytes and values all of a store's
// rings hold, so /metrics reads it without locking every ring.
type ringMem struct {
	bytes, values atomic.Int64
}

// attach files r's memory under m; r must not be shared yet or its lock
// must not be held.
func (r *ring) attach(m *ringMem) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mem = m
	b, v := r.sizeLocked()
	m.bytes.Add(int64(b))
	m.values.Add(int64(v))
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
func (r *ring) columnsFor(paths []string, idx []int) []int {
	idx = slices.Grow(idx[:0], len(paths))[:len(paths)]
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
			r.paths, r.cols = nil, nil
			r.head, r.n = 0, 0
		}
	}
	for _, p := range paths {
		j := sort.SearchStrings(r.paths, p)
		if j == len(r.paths) || r.paths[j] != p {
			r.paths = slices.Insert(r.paths, j, p)
			// Every held sample lacks the new path.
			r.cols = slices.Insert(r.cols, j, column{c: math.NaN()})
		}
	}
	for i, p := range paths {
		idx[i] = sort.SearchStrings(r.paths, p)
	}
	return idx
}

// compact drops the columns that hold no value in any live slot.
func (r *ring) compact() {
	keep := 0
	for c := range r.cols {
		used := false
		for k := 0; k < r.n && !used; k++ {
			slot := (r.head - 1 - k + len(r.ts)) % len(r.ts)
			used = !math.IsNaN(r.cols[c].get(slot))
		}
		if used {
			r.paths[keep], r.cols[keep] = r.paths[c], r.cols[c]
			keep++
		}
	}
	clear(r.paths[keep:])
	clear(r.cols[keep:])
	r.paths, r.cols = r.paths[:keep], r.cols[:keep]
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
// added twice. It reports whether the sample is new to the ring.
func (r *ring) add(ts float64, paths []string, values []float64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.has(ts) {
		return false
	}
	if r.mem != nil {
		b0, v0 := r.sizeLocked()
		defer func() {
			if b1, v1 := r.sizeLocked(); b1 != b0 || v1 != v0 {
				r.mem.bytes.Add(int64(b1 - b0))
				r.mem.values.Add(int64(v1 - v0))
			}
		}()
	}
	r.total++
	capacity := len(r.ts)
	if r.n == capacity && ts < r.ts[r.head] {
		return false // the head slot holds the oldest sample of a full ring
	}
	var buf [32]int
	idx := r.columnsFor(paths, buf[:0])
	// Slot head is written; it holds the only live sample when the ring
	// was empty (or holds one slot), which lets a constant column take
	// any value.
	alone := r.n == 0 || capacity == 1
	sorted := slices.IsSorted(idx)
	next := 0 // the sample's value for column c, if any, is values[next]
	for c := range r.cols {
		v := math.NaN()
		if next < len(idx) && idx[next] == c {
			v = values[next]
			next++
		} else if !sorted {
			if k := slices.Index(idx, c); k >= 0 {
				v = values[k]
			}
		}
		r.cols[c].set(r.head, v, capacity, alone)
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
		for c := range r.cols {
			r.cols[c].swap(prev, cur)
		}
		cur = prev
	}
	r.head = (r.head + 1) % capacity
	if r.n < capacity {
		r.n++
	}
	return true
}

// latest returns up to limit samples, newest first.
func (r *ring) latest(limit int) []Sample {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.latestLocked(limit)
}

// latestLocked is latest with r.mu held.
func (r *ring) latestLocked(limit int) []Sample {
	if limit <= 0 || limit > r.n {
		limit = r.n
	}
	out := make([]Sample, 0, limit)
	w := len(r.paths)
	for k := 0; k < limit; k++ {
		slot := (r.head - 1 - k + len(r.ts)) % len(r.ts)
		s := Sample{Timestamp: r.ts[slot], Paths: make([]string, 0, w), Values: make([]float64, 0, w)}
		for c := range r.cols {
			if v := r.cols[c].get(slot); !math.IsNaN(v) {
				s.Paths = append(s.Paths, r.paths[c])
				s.Values = append(s.Values, v)
			}
		}
		out = append(out, s)
	}
	return out
}

// since returns the samples with a timestamp at or after ts, oldest
// first.
func (r *ring) since(ts float64) []Sample {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for n < r.n && r.ts[(r.head-1-n+len(r.ts))%len(r.ts)] >= ts {
		n++
	}
	if n == 0 {
		return nil
	}
	out := r.latestLocked(n)
	slices.Reverse(out)
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
	return r.sizeLocked()
}

// sizeLocked is memBytes with r.mu held.
func (r *ring) sizeLocked() (bytes, values int) {
	bytes = 8 * len(r.ts)
	for c := range r.cols {
		bytes += len(r.cols[c].buf)
	}
	return bytes, r.n * len(r.paths)
}

// A column's form, narrowest first. A wider form holds every value of a
// narrower one, exactly; a column only ever widens.
const (
	colConst uint8 = iota // every live slot holds c (NaN: absent); no bytes per slot
	colDec16              // value×100 as int16, NaN as math.MinInt16: 2 bytes
	colDec32              // value×100 as int32, NaN as math.MinInt32: 4 bytes
	colF64                // the float64 bits: 8 bytes
)

// column is one metric path's values, one per ring slot, in the narrowest
// form that holds them exactly (bit for bit; -0 and values with more than
// two decimals take colF64).
type column struct {
	kind uint8
	c    float64 // colConst's value
	buf  []byte  // little-endian slots of colDec16, colDec32, colF64
}

// formOf returns the narrowest form that holds v exactly.
func formOf(v float64) uint8 {
	if math.IsNaN(v) {
		return colDec16 // the sentinel of any integer form
	}
	n := math.Round(v * 100)
	if n > math.MinInt32 && n <= math.MaxInt32 && math.Float64bits(float64(int32(n))/100) == math.Float64bits(v) {
		if n > math.MinInt16 && n <= math.MaxInt16 {
			return colDec16
		}
		return colDec32
	}
	return colF64
}

func (col *column) get(slot int) float64 {
	switch col.kind {
	case colConst:
		return col.c
	case colDec16:
		if x := int16(binary.LittleEndian.Uint16(col.buf[2*slot:])); x != math.MinInt16 {
			return float64(x) / 100
		}
	case colDec32:
		if x := int32(binary.LittleEndian.Uint32(col.buf[4*slot:])); x != math.MinInt32 {
			return float64(x) / 100
		}
	default:
		return math.Float64frombits(binary.LittleEndian.Uint64(col.buf[8*slot:]))
	}
	return math.NaN()
}

// put stores v in slot; the form must hold it.
func (col *column) put(slot int, v float64) {
	switch col.kind {
	case colDec16:
		x := int16(math.MinInt16)
		if !math.IsNaN(v) {
			x = int16(math.Round(v * 100))
		}
		binary.LittleEndian.PutUint16(col.buf[2*slot:], uint16(x))
	case colDec32:
		x := int32(math.MinInt32)
		if !math.IsNaN(v) {
			x = int32(math.Round(v * 100))
		}
		binary.LittleEndian.PutUint32(col.buf[4*slot:], uint32(x))
	case colF64:
		binary.LittleEndian.PutUint64(col.buf[8*slot:], math.Float64bits(v))
	}
}

// set stores v in slot of a column of capacity slots; alone says no other
// slot is live, so a constant column may take v as its constant.
func (col *column) set(slot int, v float64, capacity int, alone bool) {
	if col.kind == colConst {
		if math.Float64bits(v) == math.Float64bits(col.c) || alone {
			col.c = v
			return
		}
	} else if formOf(v) <= col.kind {
		col.put(slot, v)
		return
	}
	col.widen(max(formOf(v), formOf(col.c), colDec16), capacity)
	col.put(slot, v)
}

// widen moves the column to form kind, keeping every slot's value.
func (col *column) widen(kind uint8, capacity int) {
	if kind <= col.kind && col.kind != colConst {
		return
	}
	old := *col
	size := 8
	switch kind {
	case colDec16:
		size = 2
	case colDec32:
		size = 4
	}
	*col = column{kind: kind, buf: make([]byte, size*capacity)}
	for slot := 0; slot < capacity; slot++ {
		col.put(slot, old.get(slot))
	}
}

// swap exchanges the values of two slots.
func (col *column) swap(a, b int) {
	if col.kind == colConst {
		return
	}
	va, vb := col.get(a), col.get(b)
	col.put(a, vb)
	col.put(b, va)
}
