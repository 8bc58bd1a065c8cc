package loadgen

import (
	"math"
	"sync"
	"time"
)

// Latencies are recorded in a log-bucketed histogram: bucket i holds
// durations in [base^i, base^(i+1)) microseconds, so every percentile is
// exact to about 1 % at fixed memory, however long the run.
const (
	histBase    = 1.01
	histBuckets = 2000 // 1.01^2000 µs is far beyond any timeout
)

var logHistBase = math.Log(histBase)

// hist is a latency histogram. It is safe for concurrent use, but each
// hot loop should own one and Merge it at the end.
type hist struct {
	mu    sync.Mutex
	count [histBuckets]uint64
	n     uint64
	max   time.Duration
}

// Record adds one latency.
func (h *hist) Record(d time.Duration) {
	us := float64(d) / float64(time.Microsecond)
	i := 0
	if us > 1 {
		i = min(histBuckets-1, int(math.Log(us)/logHistBase))
	}
	h.mu.Lock()
	h.count[i]++
	h.n++
	h.max = max(h.max, d)
	h.mu.Unlock()
}

// Merge adds o's latencies to h.
func (h *hist) Merge(o *hist) {
	o.mu.Lock()
	defer o.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, c := range o.count {
		h.count[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Percentiles are the figures of a histogram, in milliseconds.
type Percentiles struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// Percentiles returns p50, p90, p99 and the maximum. A percentile is the
// upper edge of its bucket, capped at the maximum seen.
func (h *hist) Percentiles() Percentiles {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := Percentiles{Count: h.n, Max: ms(h.max)}
	if h.n == 0 {
		return p
	}
	at := func(q float64) float64 {
		want := uint64(math.Ceil(q * float64(h.n)))
		var seen uint64
		for i, c := range h.count {
			seen += c
			if seen >= want {
				us := math.Pow(histBase, float64(i+1))
				return math.Min(us/1000, p.Max)
			}
		}
		return p.Max
	}
	p.P50, p.P90, p.P99 = at(0.50), at(0.90), at(0.99)
	return p
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
