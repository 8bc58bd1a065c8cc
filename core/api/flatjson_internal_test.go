package api

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/store"
)

// referenceJSON is what the handlers wrote before: c.JSON of maps from
// protocol.Unflatten (json.Encoder, HTML escaping, a trailing newline).
func referenceJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReadAnswersMatchEncodingJSON: the hand-written answers of the two
// per-host read endpoints are byte for byte those of the maps they
// replace, for random trees, hostile names and every float form.
func TestReadAnswersMatchEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	segs := []string{"a", "b", "a-b", "a_b", "/", "/boot", "io", "sda", "é", "<x>", "q\"uote", "A", "z9", "&"}
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 12.5, 1e-7, 1.5e-6, 1e-6, 123456789012, 1e20, 1e21, 3e300, -4.25e-300, 1.0 / 3, 2400}
	randSample := func() store.Sample {
		seen := map[string]bool{}
		var paths []string
		for n := rng.IntN(8) + 1; len(paths) < n; {
			depth := rng.IntN(3) + 1
			p := ""
			for d := 0; d < depth; d++ {
				if d > 0 {
					p += "."
				}
				p += segs[rng.IntN(len(segs))]
			}
			if !seen[p] {
				seen[p] = true
				paths = append(paths, p)
			}
		}
		// Sorted as the store keeps them; some sets are not trees ("a"
		// beside "a.b"): those take the map route.
		slices.Sort(paths)
		smp := store.Sample{Timestamp: floats[rng.IntN(len(floats))] + 1.7e9, Paths: paths}
		for range paths {
			smp.Values = append(smp.Values, floats[rng.IntN(len(floats))])
		}
		return smp
	}
	for round := 0; round < 2000; round++ {
		host := []string{"web01", "<b>&", "db-01.example"}[rng.IntN(3)]
		sums := map[string]store.PluginSummary{}
		ref := map[string]pluginSummaryJSON{}
		var samples []store.Sample
		var refSamples []SampleJSON
		for i := rng.IntN(4); i > 0; i-- {
			name := []string{"cpu_monitor", "disk_monitor", "x<y", "n", "a-b"}[rng.IntN(5)]
			smp := randSample()
			sums[name] = store.PluginSummary{Latest: smp, Count: rng.IntN(101)}
			ref[name] = pluginSummaryJSON{Timestamp: smp.Timestamp, Data: protocol.Unflatten(smp.Paths, smp.Values), SampleCount: sums[name].Count}
			samples = append(samples, smp)
			refSamples = append(refSamples, SampleJSON{Timestamp: smp.Timestamp, Data: protocol.Unflatten(smp.Paths, smp.Values)})
		}
		if refSamples == nil {
			refSamples = []SampleJSON{}
		}
		thresholds := map[string]alert.Threshold{}
		if round%2 == 1 {
			w, c := 80.5, 95.0
			thresholds["cpu_monitor.<cpu>"] = alert.Threshold{Warning: &w, Critical: &c, For: 2, Rule: "thresholds.cpu_monitor.*"}
			thresholds["disk_monitor.free"] = alert.Threshold{Critical: &w, Below: true, Rule: "hosts.web01"}
		}
		// Declared units: by last segment and by path, some names
		// needing escapes; "a-b" sorts below "a." (the map route).
		var declared map[string]map[string]string
		if round%3 != 0 {
			declared = map[string]map[string]string{
				"cpu_monitor":  {"a": "percent", "<x>": "MHz", "a.b": "bytes_total", "é": ""},
				"disk_monitor": {"q\"uote": "GiB", "/": "count", "z9": "seconds"},
				"x<y":          {"&": "celsius", "A": "percent"},
				"n":            {"b": "bytes"},
				"a-b":          {"sda": "count_total"},
			}
		}
		units := map[string]string{}
		for name, sum := range sums {
			metricUnits(units, name, declared[name], sum.Latest)
		}
		got, err := hostPluginsJSON(host, sums, thresholds, declared)
		if err != nil {
			t.Fatal(err)
		}
		want := referenceJSON(t, map[string]any{"hostname": host, "plugins": ref, "thresholds": thresholds, "units": units})
		if !bytes.Equal(got, want) {
			t.Fatalf("plugins answer\n got %s\nwant %s", got, want)
		}
		plugin := []string{"cpu_monitor", "<script>", "bad\xffutf8"}[rng.IntN(3)]
		sampleUnits := map[string]string{}
		metricUnits(sampleUnits, plugin, declared["cpu_monitor"], samples...)
		got = samplesJSON(host, plugin, samples, declared["cpu_monitor"])
		want = referenceJSON(t, map[string]any{"hostname": host, "plugin": plugin, "samples": refSamples, "sample_count": len(refSamples), "units": sampleUnits})
		if !bytes.Equal(got, want) {
			t.Fatalf("samples answer\n got %s\nwant %s", got, want)
		}
	}
}

// TestReadAnswersPretty: ?pretty indents as c.JSON did.
func TestReadAnswersPretty(t *testing.T) {
	e := echo.New()
	body := map[string]any{"hostname": "web01", "plugins": map[string]pluginSummaryJSON{"p": {Timestamp: 1.5, Data: map[string]any{"a": map[string]any{"b": 2.0}}, SampleCount: 3}}, "thresholds": map[string]alert.Threshold{}, "units": map[string]string{"p.a.b": "MHz"}}
	for _, target := range []string{"/x", "/x?pretty"} {
		want := httptest.NewRecorder()
		if err := e.NewContext(httptest.NewRequest(http.MethodGet, target, nil), want).JSON(http.StatusOK, body); err != nil {
			t.Fatal(err)
		}
		got := httptest.NewRecorder()
		b, err := hostPluginsJSON("web01", map[string]store.PluginSummary{"p": {Latest: store.Sample{Timestamp: 1.5, Paths: []string{"a.b"}, Values: []float64{2}}, Count: 3}}, map[string]alert.Threshold{}, map[string]map[string]string{"p": {"b": "MHz"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := jsonBytes(e.NewContext(httptest.NewRequest(http.MethodGet, target, nil), got), b); err != nil {
			t.Fatal(err)
		}
		if got.Body.String() != want.Body.String() || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
			t.Fatalf("%s:\n got %q (%s)\nwant %q (%s)", target, got.Body, got.Header().Get("Content-Type"), want.Body, want.Header().Get("Content-Type"))
		}
	}
}
