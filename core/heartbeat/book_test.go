package heartbeat

import (
	"context"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/heartbeat/record"
	"github.com/hbdmon/hbd/core/testutil"
)

// TestBookPersistsFamiliesOnlyWhenTheyChange runs a book on a real store:
// stored records come back as expectations, a family used for the first
// time is written at once, moving times only at Flush, and Forget deletes.
func TestBookPersistsFamiliesOnlyWhenTheyChange(t *testing.T) {
	ctx := context.Background()
	st := testutil.Store(t, 10)
	st.SaveHostHeartbeats([]record.Heartbeats{{Host: "old01", Families: map[string]float64{"ipv4": 1711234000, "ipv6": 1711234001}}})
	sync := func() {
		t.Helper()
		if err := st.JournalSync(ctx, "", "sync"); err != nil { // the writer is one queue
			t.Fatal(err)
		}
	}
	stored := func() map[string]record.Heartbeats {
		t.Helper()
		sync()
		recs, err := st.HostHeartbeats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]record.Heartbeats{}
		for _, r := range recs {
			out[r.Host] = r
		}
		return out
	}
	sync()

	var book *Book
	tr := NewTracker(TrackerConfig{OnChange: func(ch Change) { book.Changed(ch) }})
	book = NewBook(tr, st, nil)
	loaded, err := book.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1711234567, 0)
	x := ExpectationOf(loaded["old01"], t0, false)
	if len(loaded) != 1 || x.Host != "old01" || !x.LastSeen[IPv6].Equal(time.Unix(1711234001, 0)) {
		t.Fatalf("loaded %+v, expectation %+v", loaded, x)
	}
	tr.Expect(x)

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { book.Run(runCtx); close(done) }()
	defer func() { cancel(); <-done }()

	heard := func(at time.Time) {
		t.Helper()
		p := Packet{Session: 1, Seq: uint64(at.Unix()), SentNanos: at.UnixNano(), IntervalMS: 1000, Host: []byte("web01")}
		if err := tr.observe(p.Host, 0, &p, addr4, at, false); err != nil {
			t.Fatal(err)
		}
	}
	heard(t0)
	testutil.Eventually(t, "web01's new family written", 10*time.Second, func() bool {
		return stored()["web01"].Families["ipv4"] == float64(t0.Unix())
	})
	heard(t0.Add(time.Second)) // only the time moves: kept for the next write
	if got := stored()["web01"].Families["ipv4"]; got != float64(t0.Unix()) {
		t.Fatalf("a moving time was written at once: %v", got)
	}
	book.Flush()
	if got := stored()["web01"]; got.Families["ipv4"] != float64(t0.Unix()+1) || got.LastSeen() != float64(t0.Unix()+1) {
		t.Fatalf("after Flush: %+v", got)
	}
	book.Forget([]string{"old01"})
	if recs := stored(); len(recs) != 1 {
		t.Fatalf("after Forget: %+v", recs)
	}
}
