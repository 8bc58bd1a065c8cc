// Package protocol holds the wire formats that hbd and hbc share for sample
// ingestion: the JSON batch body, the signing headers and the validation rules
// every sample must pass before the daemon stores it.
//
// A batch is sent as
//
//	POST /api/0/ingest
//	X-HBD-Host: web01
//	X-HBD-Timestamp: 1711234567        (unix seconds, sender clock)
//	X-HBD-Signature: <hex HMAC-SHA256>
//	Content-Type: application/json
//
//	{"samples":[{"plugin":"cpu_monitor","timestamp":1711234567.1,"data":{...}}]}
//
// The signature covers "hbd-ingest-v1\n" + host + "\n" + timestamp + "\n" + body,
// keyed with the host's secret, so neither the host name, the time nor the
// body can be swapped without detection.
package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hbdmon/hbd/core/safetext"
)

// Header names of a signed ingestion request.
const (
	HeaderHost      = "X-HBD-Host"
	HeaderTimestamp = "X-HBD-Timestamp"
	HeaderSignature = "X-HBD-Signature"
)

// IngestPath is the URL path batches are posted to.
const IngestPath = "/api/0/ingest"

// Bounds every batch and sample must respect.
const (
	MaxBatchBytes     = 1 << 20 // body size
	MaxBatchSamples   = 1000
	MaxSampleFields   = 512 // numeric leaves per sample
	MaxSampleDepth    = 4   // nesting levels of data objects
	MaxPathLength     = 200 // flattened metric path length
	MaxClockSkew      = 5 * time.Minute
	signatureContext  = "hbd-ingest-v1\n"
	maxPluginNameSize = 64
)

// Sentinel errors callers branch on.
var (
	ErrBadSignature = errors.New("bad signature")
	ErrStale        = errors.New("timestamp outside the allowed clock skew")
	ErrInvalid      = errors.New("invalid sample")
)

var pluginNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Sample is one plugin reading as it travels on the wire.
type Sample struct {
	Plugin    string         `json:"plugin"`
	Timestamp float64        `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// Batch is the body of an ingestion request.
type Batch struct {
	Samples []Sample `json:"samples"`
	// Agent is the agent's health text (see AgentInfo); only sent to
	// daemons that announced "agent_health" in an earlier answer.
	Agent *AgentInfo `json:"agent,omitempty"`
	// Units are the units the agent's plugins declare (see Units); only
	// sent to daemons that announced "units" in an earlier answer.
	Units Units `json:"units,omitempty"`
}

// Sign returns the hex signature for a batch body sent by host at unix time ts.
func Sign(key []byte, host string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(signatureContext))
	m.Write([]byte(host))
	m.Write([]byte{'\n'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'\n'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature and the request time against now. It returns
// ErrStale or ErrBadSignature.
func Verify(key []byte, host, tsHeader, sig string, body []byte, now time.Time) error {
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not a unix time", ErrBadSignature, HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > MaxClockSkew || d < -MaxClockSkew {
		return ErrStale
	}
	want := Sign(key, host, ts, body)
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(sig))) {
		return ErrBadSignature
	}
	return nil
}

// Metric is one flattened numeric leaf of a sample.
type Metric struct {
	Path  string // e.g. "/.percent" inside disk_monitor
	Value float64
}

// Flatten validates a sample's data and returns its numeric leaves sorted by
// path, nested keys joined with ".". It rejects non-numeric leaves, NaN and
// infinities, too deep nesting, too many fields and over-long paths.
func Flatten(data map[string]any) ([]Metric, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: data must be a non-empty object", ErrInvalid)
	}
	out := make([]Metric, 0, len(data))
	if err := flatten("", data, 1, &out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		// Only empty objects: nothing to store or evaluate.
		return nil, fmt.Errorf("%w: data has no numeric value", ErrInvalid)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func flatten(prefix string, obj map[string]any, depth int, out *[]Metric) error {
	if depth > MaxSampleDepth {
		return fmt.Errorf("%w: nesting deeper than %d at %q", ErrInvalid, MaxSampleDepth, prefix)
	}
	for k, v := range obj {
		if err := checkKey(k); err != nil {
			return fmt.Errorf("%w: key %q under %q: %v", ErrInvalid, k, prefix, err)
		}
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if len(p) > MaxPathLength {
			return fmt.Errorf("%w: metric path longer than %d bytes", ErrInvalid, MaxPathLength)
		}
		switch x := v.(type) {
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("%w: %q is not a finite number", ErrInvalid, p)
			}
			if len(*out) >= MaxSampleFields {
				return fmt.Errorf("%w: more than %d fields", ErrInvalid, MaxSampleFields)
			}
			*out = append(*out, Metric{Path: p, Value: x})
		case map[string]any:
			if err := flatten(p, x, depth+1, out); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: %q must be a number or an object, got %s", ErrInvalid, p, typeName(v))
		}
	}
	return nil
}

// checkKey refuses keys that would make flattened paths ambiguous: empty
// keys, keys holding the path separator ".", and control characters (the
// store keeps a series' paths newline-separated).
func checkKey(k string) error {
	if k == "" {
		return errors.New("must not be empty")
	}
	for _, r := range k {
		if r == '.' {
			return errors.New(`must not contain "." (it separates path segments; use "_")`)
		}
		if safetext.Unsafe(r) || r == utf8.RuneError {
			return errors.New("must not contain control characters, bidirectional formatting characters or invalid UTF-8")
		}
	}
	return nil
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "bool"
	case []any:
		return "array"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// ValidatePlugin checks a plugin name: lower case letters, digits and
// underscores, starting with a letter, at most 64 bytes.
func ValidatePlugin(name string) error {
	if !pluginNameRE.MatchString(name) {
		return fmt.Errorf("%w: plugin name %q must match %s", ErrInvalid, name, pluginNameRE)
	}
	return nil
}

// Unflatten rebuilds the nested data object from flattened metrics, the
// inverse of Flatten for the API's response shapes.
func Unflatten(paths []string, values []float64) map[string]any {
	root := make(map[string]any, len(paths))
	for i, p := range paths {
		node := root
		parts := strings.Split(p, ".")
		for _, part := range parts[:len(parts)-1] {
			child, ok := node[part].(map[string]any)
			if !ok {
				child = map[string]any{}
				node[part] = child
			}
			node = child
		}
		node[parts[len(parts)-1]] = values[i]
	}
	return root
}
