// Package ingesttest is a stand-in for the daemon's ingestion endpoint in
// agent tests: it checks every request the way hbd must (path, bounds,
// signature via protocol.Verify) and records the samples it accepts.
package ingesttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/protocol"
)

// Daemon is an http.Handler for protocol.IngestPath.
type Daemon struct {
	t    testing.TB
	host string
	key  []byte

	// Reject, when set before serving, may answer a batch with a status
	// instead of accepting it (0 accepts).
	Reject func(b protocol.Batch) int

	status  atomic.Int32
	mu      sync.Mutex
	samples []protocol.Sample
	batches []int
	// stored holds the signatures of stored requests; duplicates counts
	// the repeats answered "duplicate".
	stored     map[string]bool
	duplicates int
}

// New returns a daemon that accepts batches from host signed with key.
func New(t testing.TB, host string, key []byte) *Daemon {
	return &Daemon{t: t, host: host, key: key, stored: map[string]bool{}}
}

// SetStatus makes the daemon answer every valid batch with status (for
// example 503) until it is set back to 0.
func (d *Daemon) SetStatus(status int) { d.status.Store(int32(status)) }

// ServeHTTP implements http.Handler.
func (d *Daemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if r.URL.Path != protocol.IngestPath || r.Method != http.MethodPost {
		d.t.Errorf("ingest request to %s %s", r.Method, r.URL.Path)
	}
	if len(body) > protocol.MaxBatchBytes {
		d.t.Errorf("batch of %d bytes exceeds protocol.MaxBatchBytes", len(body))
	}
	host := r.Header.Get(protocol.HeaderHost)
	err = protocol.Verify(d.key, host, r.Header.Get(protocol.HeaderTimestamp),
		r.Header.Get(protocol.HeaderSignature), body, time.Now())
	if err != nil || host != d.host {
		reply(w, http.StatusUnauthorized, fmt.Sprintf(`{"error":"host %q: signature rejected"}`, host))
		return
	}
	var b protocol.Batch
	if err := json.Unmarshal(body, &b); err != nil {
		d.t.Errorf("batch is not JSON: %v", err)
		reply(w, http.StatusBadRequest, `{"error":"body is not a JSON batch"}`)
		return
	}
	if len(b.Samples) > protocol.MaxBatchSamples {
		d.t.Errorf("batch of %d samples exceeds protocol.MaxBatchSamples", len(b.Samples))
	}
	if st := d.status.Load(); st != 0 {
		reply(w, int(st), `{"error":"unavailable"}`)
		return
	}
	if d.Reject != nil {
		if st := d.Reject(b); st != 0 {
			reply(w, st, `{"error":"rejected"}`)
			return
		}
	}
	d.mu.Lock()
	// Like hbd, a signed request already stored is answered as a
	// duplicate and not stored again.
	sig := r.Header.Get(protocol.HeaderSignature)
	if d.stored[sig] {
		d.duplicates++
		d.mu.Unlock()
		reply(w, http.StatusOK, `{"ok":true,"accepted":0,"duplicate":true}`)
		return
	}
	d.stored[sig] = true
	d.samples = append(d.samples, b.Samples...)
	d.batches = append(d.batches, len(b.Samples))
	d.mu.Unlock()
	reply(w, http.StatusOK, fmt.Sprintf(`{"ok":true,"accepted":%d}`, len(b.Samples)))
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// Samples returns the accepted samples in arrival order.
func (d *Daemon) Samples() []protocol.Sample {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.samples)
}

// Batches returns the size of each accepted batch.
func (d *Daemon) Batches() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.batches)
}

// Duplicates returns how many requests repeated a stored one (and were
// answered "duplicate" without being stored again).
func (d *Daemon) Duplicates() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.duplicates
}

// Serve starts h on addr ("127.0.0.1:0" for any port), retrying briefly
// while a just-closed server releases the port, and closes it at the end
// of the test.
func Serve(t testing.TB, addr string, h http.Handler) *httptest.Server {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}
