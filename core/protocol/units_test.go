package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestUnitOfPathThenLastSegment(t *testing.T) {
	units := map[string]string{"bytes_sent": UnitBytesTotal, "connections.total": UnitCount, "total": UnitPercent, "q": UnitNone}
	for path, want := range map[string]string{
		"eth0.bytes_sent":   UnitBytesTotal, // last segment
		"connections.total": UnitCount,      // the path wins
		"eth9.total":        UnitPercent,
		"bytes_sent":        UnitBytesTotal,
		"q":                 UnitNone, // declared without a unit
	} {
		if got, ok := UnitOf(units, path); !ok || got != want {
			t.Errorf("UnitOf(%q) = %q, %v; want %q", path, got, ok, want)
		}
	}
	for _, path := range []string{"eth0.packets", "bytes_sent.x", "nope"} {
		if got, ok := UnitOf(units, path); ok {
			t.Errorf("UnitOf(%q) = %q, want none", path, got)
		}
	}
	if !IsCounter(UnitBytesTotal) || !IsCounter(UnitCountTotal) || IsCounter(UnitBytes) || IsCounter("x_total") {
		t.Error("IsCounter")
	}
}

func TestCleanUnitsBoundsAndVocabulary(t *testing.T) {
	got, err := CleanUnits(Units{"cpu_monitor": {"cpu_percent": "percent", "warp": "furlongs", "a.b": "MHz"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got["cpu_monitor"]) != 2 || got["cpu_monitor"]["a.b"] != "MHz" {
		t.Errorf("unknown units are left out, the rest kept: %v", got)
	}
	many := Units{}
	for i := 0; i <= MaxUnitPlugins; i++ {
		many["p"+strings.Repeat("x", i)] = nil
	}
	keys := map[string]string{}
	for i := 0; i <= MaxUnitKeys; i++ {
		keys[strings.Repeat("k", i+1)[:1]+string(rune('a'+i%26))+strings.Repeat("z", i/26)] = "count"
	}
	for name, u := range map[string]Units{
		"bad plugin":      {"Bad-Name": {"x": "count"}},
		"empty key":       {"p": {"": "count"}},
		"empty segment":   {"p": {"a..b": "count"}},
		"long key":        {"p": {strings.Repeat("k", MaxUnitKey+1): "count"}},
		"control in key":  {"p": {"a\nb": "count"}},
		"long unit":       {"p": {"k": strings.Repeat("u", 17)}},
		"too many keys":   {"p": keys},
		"too many plugin": many,
	} {
		if _, err := CleanUnits(u); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if err := ValidatePluginUnits(map[string]string{"k": "furlongs"}); err == nil || !strings.Contains(err.Error(), `"MHz"`) {
		t.Errorf("an agent's config with an unknown unit: %v (want the vocabulary listed)", err)
	}
}

// A batch from an agent that declares no units (an old one) keeps the
// fast decoder's form byte for byte; one with units takes encoding/json
// (the fast decoder declines it) and decodes them; both carry the same
// samples. The signature covers the whole body, units included.
func TestBatchRoundTripWithAndWithoutUnits(t *testing.T) {
	samples := []Sample{{Plugin: "cpu_monitor", Timestamp: 1711234567.5, Data: map[string]any{"cpu_percent": 12.5, "frequency": 2100.0}}}
	oldBody, _ := json.Marshal(Batch{Samples: samples})
	if bytes.Contains(oldBody, []byte("units")) {
		t.Fatalf("a batch without units mentions them: %s", oldBody)
	}
	flat, ok := DecodeFlat(oldBody)
	if !ok || len(flat) != 1 || flat[0].Paths[1] != "frequency" || flat[0].Values[1] != 2100 {
		t.Fatalf("old batch: %v %v", flat, ok)
	}
	newBody, _ := json.Marshal(Batch{Samples: samples, Units: Units{"cpu_monitor": {"cpu_percent": UnitPercent, "frequency": UnitMHz}}})
	if _, ok := DecodeFlat(newBody); ok {
		t.Fatal("the fast decoder took a batch with units (it cannot return them)")
	}
	var b Batch
	dec := json.NewDecoder(bytes.NewReader(newBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatal(err)
	}
	if b.Units["cpu_monitor"]["frequency"] != UnitMHz || len(b.Samples) != 1 || b.Samples[0].Data["frequency"] != 2100.0 {
		t.Fatalf("decoded %+v", b)
	}
	sig := Sign([]byte("k"), "web01", 1711234567, newBody)
	tampered := bytes.Replace(newBody, []byte(`"MHz"`), []byte(`"GiB"`), 1)
	if Sign([]byte("k"), "web01", 1711234567, tampered) == sig {
		t.Fatal("the signature does not cover the units")
	}
}
