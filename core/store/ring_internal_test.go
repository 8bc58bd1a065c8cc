package store

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestColumnFormsAreExact: every value comes back bit for bit, whatever
// form its column took, and a column only widens as far as its values
// need.
func TestColumnFormsAreExact(t *testing.T) {
	for _, tc := range []struct {
		vals []float64
		kind uint8
	}{
		{[]float64{2400, 2400, 2400}, colConst},
		{[]float64{math.NaN(), math.NaN()}, colConst},
		{[]float64{12.5, 99.99, -327.67, 327.67, 0, math.NaN()}, colDec16},
		{[]float64{327.68, 1.01, math.NaN()}, colDec32},
		{[]float64{-21474836.47, 21474836.47, 16000}, colDec32},
		{[]float64{21474836.48}, colConst},
		{[]float64{1, 21474836.48}, colF64},
		{[]float64{1, 0.001}, colF64},
		{[]float64{1, math.Copysign(0, -1)}, colF64},
		{[]float64{1, 1e300, math.Inf(1)}, colF64},
		{[]float64{0.1, 0.2, 0.30000000000000004}, colF64},
	} {
		var col column
		col.c = math.NaN()
		for slot, v := range tc.vals {
			col.set(slot, v, len(tc.vals), slot == 0)
		}
		if col.kind != tc.kind {
			t.Errorf("%v: form %d, want %d", tc.vals, col.kind, tc.kind)
		}
		for slot, v := range tc.vals {
			if got := col.get(slot); math.Float64bits(got) != math.Float64bits(v) && !(math.IsNaN(got) && math.IsNaN(v)) {
				t.Errorf("%v: slot %d reads %v, want %v", tc.vals, slot, got, v)
			}
		}
	}
}

// TestRingMatchesModel drives a small ring with random samples (paths
// coming and going, late and repeated timestamps, values of every form)
// and checks every read against a plain list of the newest samples.
func TestRingMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pathsAll := []string{"a", "b.c", "b.d", "e", "f"}
	values := []float64{0, 1, 2400, 12.34, -5.5, 327.68, 123456.78, 1e12, 0.125, 1.0 / 3, math.Copysign(0, -1)}
	const capacity = 7
	for round := 0; round < 200; round++ {
		r := newRing(capacity)
		var model []Sample // oldest first, at most capacity
		ts := 1000.0
		for i := 0; i < 60; i++ {
			var smp Sample
			for _, p := range pathsAll {
				if rng.IntN(4) > 0 {
					smp.Paths = append(smp.Paths, p)
					v := values[rng.IntN(len(values))]
					if rng.IntN(3) == 0 {
						v = 7 // repeats, so constant columns happen
					}
					smp.Values = append(smp.Values, v)
				}
			}
			if len(smp.Paths) == 0 {
				continue
			}
			switch rng.IntN(10) {
			case 0:
				smp.Timestamp = ts - float64(rng.IntN(12)) // late, maybe already held
			default:
				ts += 1
				smp.Timestamp = ts
			}
			r.add(smp.Timestamp, smp.Paths, smp.Values)
			model = modelAdd(model, smp, capacity)
			got := r.latest(0)
			if len(got) != len(model) {
				t.Fatalf("round %d step %d: %d samples, want %d", round, i, len(got), len(model))
			}
			cut := ts - float64(rng.IntN(10))
			var want []float64
			for _, m := range model {
				if m.Timestamp >= cut {
					want = append(want, m.Timestamp)
				}
			}
			var since []float64
			for _, s := range r.since(cut) {
				since = append(since, s.Timestamp)
			}
			if !slices.Equal(since, want) {
				t.Fatalf("round %d step %d: since(%v) holds %v, want %v", round, i, cut, since, want)
			}
			for k, g := range got {
				w := model[len(model)-1-k]
				if g.Timestamp != w.Timestamp || !slices.Equal(g.Paths, w.Paths) || len(g.Values) != len(w.Values) {
					t.Fatalf("round %d step %d: sample %d is %+v, want %+v", round, i, k, g, w)
				}
				for j := range g.Values {
					if math.Float64bits(g.Values[j]) != math.Float64bits(w.Values[j]) {
						t.Fatalf("round %d step %d: sample %d value %s is %v, want %v", round, i, k, g.Paths[j], g.Values[j], w.Values[j])
					}
				}
			}
		}
	}
}

// modelAdd is ring.add's documented behaviour on a sorted list.
func modelAdd(model []Sample, smp Sample, capacity int) []Sample {
	for _, m := range model {
		if m.Timestamp == smp.Timestamp {
			return model // a resent sample is not added twice
		}
	}
	if len(model) == capacity && smp.Timestamp < model[0].Timestamp {
		return model // older than all of a full ring
	}
	i, _ := slices.BinarySearchFunc(model, smp.Timestamp, func(m Sample, ts float64) int {
		switch {
		case m.Timestamp < ts:
			return -1
		case m.Timestamp > ts:
			return 1
		}
		return 0
	})
	model = slices.Insert(model, i, smp)
	if len(model) > capacity {
		model = model[1:]
	}
	return model
}
