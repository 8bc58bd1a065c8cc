package protocol

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFlattenJoinsNestedKeysSorted(t *testing.T) {
	got, err := Flatten(map[string]any{"b": 2.0, "a": map[string]any{"/": map[string]any{"percent": 1.0}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (Metric{"a./.percent", 1}) || got[1] != (Metric{"b", 2}) {
		t.Fatalf("got %+v", got)
	}
}

func TestFlattenRejects(t *testing.T) {
	deep := map[string]any{"x": 1.0}
	for i := 0; i < MaxSampleDepth; i++ {
		deep = map[string]any{"n": deep}
	}
	many := map[string]any{}
	for i := 0; i <= MaxSampleFields; i++ {
		many["f"+strconv.Itoa(i)] = 1.0
	}
	cases := []struct {
		name string
		data map[string]any
		want string
	}{
		{"empty", map[string]any{}, "non-empty"},
		{"string leaf", map[string]any{"x": "high"}, "got string"},
		{"bool leaf", map[string]any{"x": true}, "got bool"},
		{"null leaf", map[string]any{"x": nil}, "got null"},
		{"array leaf", map[string]any{"x": []any{1.0}}, "got array"},
		{"NaN", map[string]any{"x": math.NaN()}, "finite"},
		{"infinite", map[string]any{"x": math.Inf(1)}, "finite"},
		{"empty key", map[string]any{"": 1.0}, "must not be empty"},
		{"dot in key", map[string]any{"a.b": 1.0}, `must not contain "."`},
		{"newline in key", map[string]any{"a\nb": 1.0}, "control characters"},
		{"NUL in key", map[string]any{"a\x00b": 1.0}, "control characters"},
		{"only empty objects", map[string]any{"a": map[string]any{}}, "no numeric value"},
		{"C1 control in key", map[string]any{"a\u0085b": 1.0}, "control"},
		{"bidi override in key", map[string]any{"cpu\u202Epercent": 1.0}, "bidirectional"},
		{"invalid UTF-8 in key", map[string]any{"a\xffb": 1.0}, "invalid UTF-8"},
		{"too deep", deep, "nesting deeper"},
		{"too many fields", many, "more than"},
		{"path too long", map[string]any{strings.Repeat("k", MaxPathLength+1): 1.0}, "longer than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Flatten(c.data)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Flatten = %v, want ErrInvalid containing %q", err, c.want)
			}
		})
	}
}

func TestUnflattenInvertsFlatten(t *testing.T) {
	in := map[string]any{"cpu": 1.0, "disk": map[string]any{"/": map[string]any{"percent": 3.0, "free_gb": 4.0}}}
	ms, err := Flatten(in)
	if err != nil {
		t.Fatal(err)
	}
	paths, values := make([]string, len(ms)), make([]float64, len(ms))
	for i, m := range ms {
		paths[i], values[i] = m.Path, m.Value
	}
	out := Unflatten(paths, values)
	if out["cpu"] != 1.0 || out["disk"].(map[string]any)["/"].(map[string]any)["free_gb"] != 4.0 {
		t.Fatalf("got %v", out)
	}
}

func TestVerify(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"samples":[]}`)
	now := time.Unix(1711234567, 0)
	ts := now.Unix()
	sig := Sign(key, "web01", ts, body)
	tsh := strconv.FormatInt(ts, 10)
	cases := []struct {
		name          string
		key           []byte
		host, ts, sig string
		body          []byte
		want          error
	}{
		{"valid", key, "web01", tsh, sig, body, nil},
		{"upper-case hex", key, "web01", tsh, strings.ToUpper(sig), body, nil},
		{"other host", key, "web02", tsh, sig, body, ErrBadSignature},
		{"other body", key, "web01", tsh, sig, []byte(`{"samples":[1]}`), ErrBadSignature},
		{"other key", []byte("another-key-another-key-another-k"), "web01", tsh, sig, body, ErrBadSignature},
		{"not a time", key, "web01", "soon", sig, body, ErrBadSignature},
		{"too old", key, "web01", strconv.FormatInt(ts-int64(MaxClockSkew/time.Second)-1, 10), sig, body, ErrStale},
		{"too new", key, "web01", strconv.FormatInt(ts+int64(MaxClockSkew/time.Second)+1, 10), sig, body, ErrStale},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := Verify(c.key, c.host, c.ts, c.sig, c.body, now); !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, want %v", err, c.want)
			}
		})
	}
}

func TestValidatePlugin(t *testing.T) {
	for name, ok := range map[string]bool{"cpu_monitor": true, "x": true, "Cpu": false, "1cpu": false, "a-b": false, "": false, strings.Repeat("a", 65): false} {
		if err := ValidatePlugin(name); (err == nil) != ok {
			t.Errorf("ValidatePlugin(%q) = %v", name, err)
		}
	}
}
