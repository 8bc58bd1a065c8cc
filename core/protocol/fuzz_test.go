package protocol

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/safetext"
)

// FuzzBatch feeds arbitrary bodies through the ingestion parse (JSON
// decode as the API does, then Flatten): it must never panic, and what it
// accepts must be bounded, finite, safe to store and round-trip through
// Unflatten.
func FuzzBatch(f *testing.F) {
	f.Add([]byte(`{"samples":[{"plugin":"cpu_monitor","timestamp":1700000000,"data":{"cpu_percent":12.5}}]}`))
	f.Add([]byte(`{"samples":[{"plugin":"disk_monitor","timestamp":1,"data":{"/":{"percent":40,"free":1e9}}}]}`))
	f.Add([]byte(`{"samples":[{"plugin":"x","timestamp":1,"data":{"a":{"b":{"c":{"d":{"e":1}}}}}}]}`))
	f.Add([]byte(`{"samples":[{"plugin":"x","timestamp":1,"data":{"a.b":1,"":2,"c\u0085":3}}]}`))
	f.Add([]byte(`{"samples":[{"plugin":"x","timestamp":1,"data":{"n":null,"s":"str","l":[1,2]}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var batch Batch
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if dec.Decode(&batch) != nil {
			return
		}
		for _, smp := range batch.Samples {
			ValidatePlugin(smp.Plugin)
			ms, err := Flatten(smp.Data)
			if err != nil {
				continue
			}
			if len(ms) == 0 || len(ms) > MaxSampleFields {
				t.Fatalf("accepted %d fields", len(ms))
			}
			paths := make([]string, len(ms))
			values := make([]float64, len(ms))
			for i, m := range ms {
				if len(m.Path) > MaxPathLength || !safetext.Valid(m.Path) || strings.Contains(m.Path, "\n") {
					t.Fatalf("accepted path %q", m.Path)
				}
				if m.Value != m.Value {
					t.Fatalf("accepted NaN at %q", m.Path)
				}
				paths[i], values[i] = m.Path, m.Value
			}
			again, err := Flatten(Unflatten(paths, values))
			if err != nil || len(again) != len(ms) {
				t.Fatalf("round trip of %v: %v %v", ms, again, err)
			}
			for i := range ms {
				if again[i] != ms[i] {
					t.Fatalf("round trip changed %v into %v", ms[i], again[i])
				}
			}
		}
	})
}

// FuzzVerify checks that signature verification never panics and accepts
// only what was signed with the key.
func FuzzVerify(f *testing.F) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"samples":[]}`)
	f.Add("web01", "1800000000", Sign(key, "web01", now.Unix(), body), body)
	f.Add("web01", "-1", "sha256=00", []byte{})
	f.Add("", "x", "", []byte("x"))
	f.Fuzz(func(t *testing.T, host, ts, sig string, b []byte) {
		err := Verify(key, host, ts, sig, b, now)
		if err == nil && sig != Sign(key, host, now.Unix(), b) && !strings.EqualFold(sig, Sign(key, host, parseTS(ts), b)) {
			t.Fatalf("accepted a signature that is not the key's: %q", sig)
		}
	})
}

func parseTS(s string) int64 {
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
		if n > 1<<50 {
			return -1
		}
	}
	return n
}
