package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hbdmon/hbd/core/protocol"
)

// Endpoint figures: how many requests, by status ("error" for a transport
// failure), and their latency.
type Endpoint struct {
	Conns    int               `json:"conns"`
	Requests uint64            `json:"requests"`
	PerSec   float64           `json:"requests_per_s"`
	Status   map[string]uint64 `json:"status"`
	Latency  Percentiles       `json:"latency"`
	// BytesPerAnswer is the mean size of a 200 answer's body.
	BytesPerAnswer float64 `json:"bytes_per_answer,omitempty"`
}

// worker is one connection's tally; each loop owns one.
type worker struct {
	hist   hist
	status map[string]uint64
	n      uint64
	bytes  uint64
	ok     uint64
}

func newWorker() *worker { return &worker{status: map[string]uint64{}} }

func (w *worker) record(status int, err error, d time.Duration, body int64) {
	w.n++
	if err != nil {
		w.status["error"]++
		return
	}
	w.status[strconv.Itoa(status)]++
	w.hist.Record(d)
	if status == http.StatusOK {
		w.ok++
		w.bytes += uint64(body)
	}
}

func endpointFigures(ws []*worker, conns int, secs float64) Endpoint {
	e := Endpoint{Conns: conns, Status: map[string]uint64{}}
	var h hist
	var ok, bytes uint64
	for _, w := range ws {
		e.Requests += w.n
		for s, n := range w.status {
			e.Status[s] += n
		}
		h.Merge(&w.hist)
		ok += w.ok
		bytes += w.bytes
	}
	e.PerSec = round3(float64(e.Requests) / secs)
	e.Latency = h.Percentiles()
	if ok > 0 {
		e.BytesPerAnswer = round3(float64(bytes) / float64(ok))
	}
	return e
}

// newHTTPClient keeps up to conns idle connections to the daemon.
func newHTTPClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			DisableCompression:  true,
			IdleConnTimeout:     time.Minute,
		},
	}
}

// IngestFigures are the sample ingestion figures of a phase.
type IngestFigures struct {
	Endpoint
	TargetSamplesPerSec float64 `json:"target_samples_per_s"`
	BatchSamples        int     `json:"batch_samples"`
	// SamplesSent counts samples in every batch sent; SamplesAccepted the
	// "accepted" counts of 200 answers (a duplicate answer accepts 0).
	SamplesSent     uint64  `json:"samples_sent"`
	SamplesAccepted uint64  `json:"samples_accepted"`
	Duplicates      uint64  `json:"duplicates"`
	SamplesPerSec   float64 `json:"samples_accepted_per_s"`
	// Behind counts the times a connection fell more than a second
	// behind its schedule (the daemon answers slower than the target).
	Behind uint64 `json:"behind_schedule"`
}

type ingestWorker struct {
	*worker
	sent, accepted, dups, behind uint64
}

// ingestAnswer is the body of a 200 answer to a batch.
type ingestAnswer struct {
	Accepted  int  `json:"accepted"`
	Duplicate bool `json:"duplicate"`
}

// runIngest posts signed batches of batch samples from the hosts over conns
// connections until ctx ends (batches in flight then are still answered
// and counted), at rate samples per second in all (0: each
// connection sends its next batch as soon as the previous is answered).
// Connection c sends for hosts c, c+conns, ... in turn. seq numbers the
// batches (it keeps values changing across phases). once stops every
// connection after one batch per host.
func runIngest(ctx context.Context, client *http.Client, base string, hosts []fleetHost, conns, batch int, rate float64, seq *uint64Counter, once bool) IngestFigures {
	start := time.Now()
	var ws []*ingestWorker
	var wg sync.WaitGroup
	for c := range conns {
		w := &ingestWorker{worker: newWorker()}
		ws = append(ws, w)
		var mine []*fleetHost
		for i := c; i < len(hosts); i += conns {
			mine = append(mine, &hosts[i])
		}
		if len(mine) == 0 {
			continue
		}
		var interval time.Duration
		if rate > 0 {
			interval = time.Duration(float64(time.Second) * float64(batch) * float64(conns) / rate)
		}
		wg.Go(func() {
			// Spread the connections' schedules over one interval.
			next := start.Add(time.Duration(rand.Int64N(int64(max(interval, 1)))))
			body := make([]byte, 0, 1024*batch)
			for i := 0; ctx.Err() == nil; i = (i + 1) % len(mine) {
				if once && i == 0 && w.n > 0 {
					return
				}
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						select {
						case <-ctx.Done():
							return
						case <-time.After(d):
						}
					} else if d < -time.Second {
						w.behind++
						next = time.Now()
					}
					next = next.Add(interval)
				}
				h := mine[i]
				now := time.Now()
				body = appendBatch(body[:0], batch, float64(now.UnixMicro())/1e6, seq.add(uint64(batch)), h.NonOK)
				w.sent += uint64(batch)
				// A batch started is seen through, so that every batch
				// the daemon stored is counted.
				status, ans, d, err := postBatch(context.WithoutCancel(ctx), client, base, h, now, body)
				w.record(status, err, d, 0)
				if status == http.StatusOK {
					w.accepted += uint64(ans.Accepted)
					if ans.Duplicate {
						w.dups++
					}
				}
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	var plain []*worker
	f := IngestFigures{TargetSamplesPerSec: rate, BatchSamples: batch}
	for _, w := range ws {
		plain = append(plain, w.worker)
		f.SamplesSent += w.sent
		f.SamplesAccepted += w.accepted
		f.Duplicates += w.dups
		f.Behind += w.behind
	}
	f.Endpoint = endpointFigures(plain, conns, secs)
	f.SamplesPerSec = round3(float64(f.SamplesAccepted) / secs)
	return f
}

// postBatch signs and posts one batch body as host at now.
func postBatch(ctx context.Context, client *http.Client, base string, h *fleetHost, now time.Time, body []byte) (int, ingestAnswer, time.Duration, error) {
	var ans ingestAnswer
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+protocol.IngestPath, bytes.NewReader(body))
	if err != nil {
		return 0, ans, 0, err
	}
	ts := now.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(protocol.HeaderHost, h.Name)
	req.Header.Set(protocol.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(protocol.HeaderSignature, protocol.Sign(h.Key, h.Name, ts, body))
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, ans, 0, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if err != nil {
		return 0, ans, d, err
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &ans); err != nil {
			return 0, ans, d, fmt.Errorf("ingest answer: %w", err)
		}
	}
	return resp.StatusCode, ans, d, nil
}

// Readers: closed loops, each on its own connection, against one read
// endpoint each.

// readEndpoint names a read endpoint and builds its path for a host and
// plugin chosen at random.
type readEndpoint struct {
	Name  string
	Conns int
	path  func(host, plugin string) string
}

func readEndpoints(plugins, samples, alerts int, alertsQuery string) []readEndpoint {
	return []readEndpoint{
		{"GET /api/0/hosts/{h}/plugins", plugins, func(h, _ string) string { return "/api/0/hosts/" + h + "/plugins" }},
		{"GET /api/0/hosts/{h}/plugins/{p}?limit=10", samples, func(h, p string) string { return "/api/0/hosts/" + h + "/plugins/" + p + "?limit=10" }},
		{"GET /api/0/alerts" + alertsQuery, alerts, func(string, string) string { return "/api/0/alerts" + alertsQuery }},
	}
}

// runReaders runs every endpoint's connections until ctx ends; requests
// in flight then are seen through.
func runReaders(ctx context.Context, base, token string, hosts []fleetHost, eps []readEndpoint) map[string]Endpoint {
	start := time.Now()
	type epWorkers struct {
		ep readEndpoint
		ws []*worker
	}
	var all []*epWorkers
	var wg sync.WaitGroup
	for _, ep := range eps {
		if ep.Conns <= 0 {
			continue
		}
		e := &epWorkers{ep: ep}
		all = append(all, e)
		client := newHTTPClient(ep.Conns)
		for range ep.Conns {
			w := newWorker()
			e.ws = append(e.ws, w)
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
				for ctx.Err() == nil {
					h := hosts[rng.IntN(len(hosts))].Name
					p := plugins[rng.IntN(len(plugins))]
					status, n, d, err := get(context.WithoutCancel(ctx), client, base+ep.path(h, p), token)
					w.record(status, err, d, n)
				}
			})
		}
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	out := map[string]Endpoint{}
	for _, e := range all {
		out[e.ep.Name] = endpointFigures(e.ws, e.ep.Conns, secs)
	}
	return out
}

func get(ctx context.Context, client *http.Client, url, token string) (int, int64, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, n, time.Since(t0), err
}

// uint64Counter hands out increasing numbers to concurrent callers.
type uint64Counter struct {
	mu sync.Mutex
	n  uint64
}

func (c *uint64Counter) add(d uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += d
	return c.n - d
}
