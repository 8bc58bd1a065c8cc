package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

// referenceDecode is the encoding/json path of the daemon: the answers
// DecodeFlat must agree with.
func referenceDecode(body []byte) ([]FlatSample, error) {
	var batch Batch
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&batch); err != nil {
		return nil, err
	}
	if len(batch.Samples) == 0 || len(batch.Samples) > MaxBatchSamples {
		return nil, fmt.Errorf("%d samples", len(batch.Samples))
	}
	out := make([]FlatSample, 0, len(batch.Samples))
	for _, smp := range batch.Samples {
		ms, err := Flatten(smp.Data)
		if err != nil {
			return nil, err
		}
		fs := FlatSample{Plugin: smp.Plugin, Timestamp: smp.Timestamp}
		for _, m := range ms {
			fs.Paths = append(fs.Paths, m.Path)
			fs.Values = append(fs.Values, m.Value)
		}
		out = append(out, fs)
	}
	return out, nil
}

// checkAgrees fails when DecodeFlat accepts body and the reference
// refuses it or reads it differently; it returns DecodeFlat's ok.
func checkAgrees(t *testing.T, body []byte) bool {
	t.Helper()
	got, ok := DecodeFlat(body)
	if !ok {
		return false
	}
	want, err := referenceDecode(body)
	if err != nil {
		t.Fatalf("fast decoder accepted %q, encoding/json refuses it: %v", body, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %d samples, want %d", body, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Plugin != w.Plugin || math.Float64bits(g.Timestamp) != math.Float64bits(w.Timestamp) ||
			!reflect.DeepEqual(g.Paths, w.Paths) || len(g.Values) != len(w.Values) {
			t.Fatalf("%q: sample %d is %+v, want %+v", body, i, g, w)
		}
		for j := range g.Values {
			if math.Float64bits(g.Values[j]) != math.Float64bits(w.Values[j]) {
				t.Fatalf("%q: sample %d value %d is %v, want %v", body, i, j, g.Values[j], w.Values[j])
			}
		}
	}
	return true
}

func TestDecodeFlatTakesAgentBatches(t *testing.T) {
	for _, body := range []string{
		`{"samples":[{"plugin":"cpu_monitor","timestamp":1700000000.25,"data":{"cpu_percent":12.5,"load_1min":0.5,"cpu_count":8}}]}`,
		` { "samples" : [ {"data":{"/":{"percent":40,"free_gb":1e2},"/boot":{"percent":-0.0}, "io":{"sda":{"read_bytes":123456789012}}},
		   "timestamp":1.5e9, "plugin":"disk_monitor"},
		  {"plugin":"memory_monitor","timestamp":1700000001,"data":{"percent":20.25,"empty":{}}},
		  {"plugin":"disk_monitor","timestamp":1700000002,"data":{"/":{"percent":41,"free_gb":99},"/boot":{"percent":1},"io":{"sda":{"read_bytes":1}}}} ] }` + "\n",
	} {
		if !checkAgrees(t, []byte(body)) {
			t.Fatalf("the fast decoder did not take %s", body)
		}
	}
	got, _ := DecodeFlat([]byte(`{"samples":[{"plugin":"a","timestamp":1,"data":{"x":1,"y":2}},{"plugin":"a","timestamp":2,"data":{"y":3,"x":4}}]}`))
	if &got[0].Paths[0] != &got[1].Paths[0] {
		t.Fatal("two samples of one shape do not share their paths")
	}
	if !reflect.DeepEqual(got[1].Values, []float64{4, 3}) {
		t.Fatalf("values %v, want sorted by path [4 3]", got[1].Values)
	}
}

// TestDecodeFlatLeavesTheRestToEncodingJSON: every body the fast decoder
// must not judge (errors, and forms whose meaning encoding/json defines:
// repeated keys, case-folded field names, escapes, null, trailing data)
// goes to the reference path.
func TestDecodeFlatLeavesTheRestToEncodingJSON(t *testing.T) {
	deep := `{"a":{"b":{"c":{"d":{"e":1}}}}}`
	wide := make([]string, MaxSampleFields+1)
	for i := range wide {
		wide[i] = fmt.Sprintf(`"k%d":%d`, i, i)
	}
	for _, data := range []string{
		`{"a":1,"a":2}`,             // last one wins in a map
		`{"a":{"b":1},"a":{"c":2}}`, // the second object replaces the first
		`{"a":1,"a":{}}`,            // the object replaces the number
		`{"a":{"b":1},"a":2}`,       // the number replaces the object
		`{"a.b":1}`,                 // ambiguous path
		`{"":1}`,                    // empty key
		`{"a\u0085":1}`,             // escape
		`{"é":1}`,                   // not ASCII
		`{"a":null}`, `{"a":"1"}`, `{"a":[1]}`, `{"a":true}`,
		`{"a":1e999}`, `{"a":-}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":+1}`, `{"a":0x10}`,
		`{}`, `{"a":{}}`, // no numeric value
		deep,
		`{` + strings.Join(wide, ",") + `}`, // too many fields
		`{"` + strings.Repeat("p", MaxPathLength+1) + `":1}`,
		`null`, `[]`, `1`,
	} {
		body := `{"samples":[{"plugin":"x","timestamp":1,"data":` + data + `}]}`
		if checkAgrees(t, []byte(body)) {
			t.Errorf("the fast decoder took %s", body)
		}
	}
	for _, body := range []string{
		`{"samples":[]}`,
		`{"samples":null}`,
		`{"Samples":[{"plugin":"x","timestamp":1,"data":{"a":1}}]}`,
		`{"samples":[{"PLUGIN":"x","timestamp":1,"data":{"a":1}}]}`,
		`{"samples":[{"plugin":"x","plugin":"y","timestamp":1,"data":{"a":1}}]}`,
		`{"samples":[{"plugin":"x","timestamp":1,"data":{"a":1},"extra":1}]}`,
		`{"samples":[{"plugin":"x","data":{"a":1}}]}`,
		`{"samples":[{"plugin":"x","timestamp":"1","data":{"a":1}}]}`,
		`{"samples":[{"plugin":"x\n","timestamp":1,"data":{"a":1}}]}`,
		`{"samples":[{"plugin":"x","timestamp":1,"data":{"a":1}}]} trailing`,
		`{"samples":[{"plugin":"x","timestamp":1,"data":{"a":1}}]}{}`,
		`{"samples":[{"plugin":"x","timestamp":1,"data":{"a":1}},]}`,
		`{"samples":[{"plugin":"x","timestamp":1,"data":{"a":1}}],"x":1}`,
		`{"samples":[{"plugin":"x","timestamp":1,"data":{"a":1}}`,
		``, `{`,
	} {
		if checkAgrees(t, []byte(body)) {
			t.Errorf("the fast decoder took %s", body)
		}
	}
	many := `{"samples":[` + strings.TrimSuffix(strings.Repeat(`{"plugin":"x","timestamp":1,"data":{"a":1}},`, MaxBatchSamples+1), ",") + `]}`
	if checkAgrees(t, []byte(many)) {
		t.Error("the fast decoder took more than MaxBatchSamples samples")
	}
}

// FuzzDecodeFlat: whatever the fast decoder accepts, encoding/json and
// Flatten accept too, with the same samples.
func FuzzDecodeFlat(f *testing.F) {
	f.Add([]byte(`{"samples":[{"plugin":"cpu_monitor","timestamp":1700000000,"data":{"cpu_percent":12.5}}]}`))
	f.Add([]byte(`{"samples":[{"plugin":"disk_monitor","timestamp":1,"data":{"/":{"percent":40,"free":1e9}}}]}`))
	f.Add([]byte(`{"samples":[{"plugin":"x","timestamp":1,"data":{"a":{"b":1},"a":{"c":2}}}]}`))
	f.Add([]byte(`{"samples":[{"plugin":"x","timestamp":-0.0e-3,"data":{"a":{"b":{"c":{"d":1}}},"e":{}}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) { checkAgrees(t, body) })
}

// BenchmarkDecodeBatch compares the two decoders on an agent's batch of 20
// samples of the four built-in plugin shapes.
func BenchmarkDecodeBatch(b *testing.B) {
	var parts []string
	for i := 0; i < 20; i++ {
		ts := 1700000000 + float64(i)
		switch i % 4 {
		case 0:
			parts = append(parts, fmt.Sprintf(`{"plugin":"cpu_monitor","timestamp":%.6f,"data":{"cpu_percent":%.2f,"load_1min":0.52,"load_5min":0.61,"load_15min":0.7,"cpu_count":8,"frequency":2400}}`, ts, 12.5+float64(i)))
		case 1:
			parts = append(parts, fmt.Sprintf(`{"plugin":"memory_monitor","timestamp":%.6f,"data":{"percent":41.2,"available_mb":8123.5,"total_mb":16000,"used_mb":6123.25,"swap_percent":1.5,"swap_total_mb":2048,"swap_used_mb":30.75}}`, ts))
		case 2:
			parts = append(parts, fmt.Sprintf(`{"plugin":"disk_monitor","timestamp":%.6f,"data":{"/":{"percent":40.5,"used_gb":40.1,"free_gb":59.9,"total_gb":100},"/boot":{"percent":20,"used_gb":0.2,"free_gb":0.8,"total_gb":1},"io":{"sda":{"read_bytes":123456789,"write_bytes":987654321,"read_count":1234,"write_count":4321,"read_bytes_per_s":1024.5,"write_bytes_per_s":2048.25}}}}`, ts))
		case 3:
			parts = append(parts, fmt.Sprintf(`{"plugin":"network_monitor","timestamp":%.6f,"data":{"eth0":{"bytes_sent":123456,"bytes_recv":654321,"bytes_sent_per_s":1024.5,"bytes_recv_per_s":2048.5,"errin":0,"errout":0},"connections":{"established":42,"listen":7}}}`, ts))
		}
	}
	body := []byte(`{"samples":[` + strings.Join(parts, ",") + `]}`)
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := referenceDecode(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, ok := DecodeFlat(body); !ok {
				b.Fatal("not taken")
			}
		}
	})
}
