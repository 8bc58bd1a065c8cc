package ws

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func popAll(t *testing.T, o *outbox) []string {
	t.Helper()
	var out []string
	for {
		msg, ok := o.pop()
		if !ok {
			return out
		}
		out = append(out, string(msg))
	}
}

func TestOutboxReplacesKeyedFramesInPlace(t *testing.T) {
	o := newOutbox(4)
	for _, p := range []struct{ key, msg string }{
		{"h\x00a", "a1"}, {"", "alert"}, {"h\x00b", "b1"}, {"h\x00a", "a2"}, {"", "alert"}, {"h\x00a", "a3"},
	} {
		if r := o.push(p.key, []byte(p.msg)); r == pushFull {
			t.Fatalf("push %s: full", p.msg)
		}
	}
	if r := o.push("h\x00c", []byte("c1")); r != pushFull {
		t.Fatalf("fifth distinct frame in a queue of 4: %d, want full", r)
	}
	if r := o.push("h\x00b", []byte("b2")); r != pushReplaced {
		t.Fatalf("replacing in a full queue: %d", r)
	}
	if got := fmt.Sprint(popAll(t, o)); got != "[a3 alert b2 alert]" {
		t.Fatalf("popped %s", got)
	}
	// A frame already taken is not replaced: the newer one queues.
	o.push("h\x00a", []byte("a4"))
	if msg, _ := o.pop(); string(msg) != "a4" {
		t.Fatalf("popped %s", msg)
	}
	if r := o.push("h\x00a", []byte("a5")); r != pushQueued {
		t.Fatalf("push after pop: %d, want queued", r)
	}
}

// The ring grows, wraps around and shrinks without losing order or a
// key's place: checked against a plain slice doing the same by search.
func TestOutboxMatchesASimpleModel(t *testing.T) {
	const max = 40
	o := newOutbox(max)
	var model []queued
	rng := rand.New(rand.NewPCG(1, 2))
	for step := 0; step < 20000; step++ {
		// Bursts of pushes, then of pops, so the ring grows and drains.
		pushing := (step/100)%2 == 0
		if pushing && rng.IntN(4) != 0 || !pushing && rng.IntN(4) == 0 {
			key := ""
			if k := rng.IntN(12); k < 8 {
				key = fmt.Sprint("h\x00", k)
			}
			msg := fmt.Sprint(step)
			want := pushQueued
			found := false
			for i := range model {
				if key != "" && model[i].key == key {
					model[i].msg, found, want = []byte(msg), true, pushReplaced
					break
				}
			}
			if !found {
				if len(model) == max {
					want = pushFull
				} else {
					model = append(model, queued{key, []byte(msg)})
				}
			}
			if got := o.push(key, []byte(msg)); got != want {
				t.Fatalf("step %d: push %q: %d, want %d", step, key, got, want)
			}
			continue
		}
		msg, ok := o.pop()
		if ok != (len(model) > 0) {
			t.Fatalf("step %d: pop ok=%v with %d modelled", step, ok, len(model))
		}
		if ok {
			if string(msg) != string(model[0].msg) {
				t.Fatalf("step %d: popped %s, want %s", step, msg, model[0].msg)
			}
			model = model[1:]
		}
		if len(model) == 0 && (len(o.ring) > minRing || len(o.keys) != 0) {
			t.Fatalf("step %d: drained queue keeps a ring of %d and %d keys", step, len(o.ring), len(o.keys))
		}
	}
}
