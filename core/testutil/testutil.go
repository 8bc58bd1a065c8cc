// Package testutil holds fixtures shared by the core's tests: a store in a
// temporary directory, configs parsed from YAML, and signed ingestion
// requests. It is imported only from _test files.
package testutil

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/store"
)

// Key is a valid host key for test configs.
const Key = "0123456789abcdef0123456789abcdef"

// Store opens a store in a fresh place (a temporary directory, or a
// PostgreSQL database with HBD_TEST_STORE=postgres), closed at cleanup.
func Store(t testing.TB, history int) *store.Store {
	t.Helper()
	s, err := OpenStore(context.Background(), StorePlace(t), store.Options{SampleHistory: history})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Config parses a YAML config body; it fails the test on error.
func Config(t testing.TB, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), []string{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// IngestRequest builds a signed POST of samples for host to baseURL.
func IngestRequest(t testing.TB, baseURL, host string, key []byte, samples ...protocol.Sample) *http.Request {
	t.Helper()
	body, err := json.Marshal(protocol.Batch{Samples: samples})
	if err != nil {
		t.Fatal(err)
	}
	return SignedRequest(t, baseURL, host, key, body)
}

// SignedRequest signs an arbitrary body as host.
func SignedRequest(t testing.TB, baseURL, host string, key, body []byte) *http.Request {
	t.Helper()
	ts := time.Now().Unix()
	req, err := http.NewRequest(http.MethodPost, baseURL+protocol.IngestPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(protocol.HeaderHost, host)
	req.Header.Set(protocol.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(protocol.HeaderSignature, protocol.Sign(key, host, ts, body))
	return req
}

// Sample builds a wire sample.
func Sample(plugin string, ts float64, data map[string]any) protocol.Sample {
	return protocol.Sample{Plugin: plugin, Timestamp: ts, Data: data}
}

var (
	buildMu    sync.Mutex
	buildCache = map[string]string{}
)

// RepoRoot returns the repository root (the directory holding go.work).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Build compiles a main package (path relative to the repo root, e.g.
// "./core/cmd/hbd") once per test process and returns the binary's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := buildCache[pkg]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "hbd-test-bin-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = RepoRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	buildCache[pkg] = out
	return out
}
