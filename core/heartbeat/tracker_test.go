package heartbeat

import (
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

var (
	addr4 = netip.MustParseAddrPort("192.0.2.10:40000")
	addr6 = netip.MustParseAddrPort("[2001:db8::10]:40000")
)

// beat feeds the tracker one heartbeat as the server would after verifying
// it.
func beat(t *testing.T, tr *Tracker, host string, f Family, session, seq uint64, at time.Time, interval time.Duration) error {
	t.Helper()
	fi, _ := familyIndex(f)
	addr := addr4
	if f == IPv6 {
		addr = addr6
	}
	p := Packet{Type: TypeHeartbeat, Session: session, Seq: seq, SentNanos: at.UnixNano(),
		IntervalMS: uint32(interval / time.Millisecond), Host: []byte(host)}
	return tr.observe(p.Host, fi, &p, addr, at, false)
}

func TestLateHeartbeatBecomesDown(t *testing.T) {
	log := &changeLog{}
	tr := NewTracker(TrackerConfig{
		Timeout:  func(h string) time.Duration { return map[string]time.Duration{"web01": 10 * time.Second}[h] },
		OnChange: log.add,
	})
	t0 := time.Unix(1711234567, 0)
	if err := beat(t, tr, "web01", IPv4, 1, 1, t0, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := beat(t, tr, "db01", IPv4, 1, 1, t0, time.Second); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		after      time.Duration
		web01, db1 State
	}{
		{1400 * time.Millisecond, StateUp, StateUp},
		{1600 * time.Millisecond, StateLate, StateLate}, // > 1.5 intervals
		{9 * time.Second, StateLate, StateLate},
		{11 * time.Second, StateDown, StateLate}, // web01's own timeout is 10 s
		{31 * time.Second, StateDown, StateDown}, // db01 falls back to DefaultTimeout
	}
	for _, s := range steps {
		tr.Sweep(t0.Add(s.after))
		if c, _ := connection(tr, "web01", IPv4); c.State != s.web01 {
			t.Errorf("after %v: web01 ipv4 %s, want %s", s.after, c.State, s.web01)
		}
		if c, _ := connection(tr, "db01", IPv4); c.State != s.db1 {
			t.Errorf("after %v: db01 ipv4 %s, want %s", s.after, c.State, s.db1)
		}
	}
	if got, want := log.states("web01", IPv4), []State{StateUp, StateLate, StateDown}; !reflect.DeepEqual(got, want) {
		t.Errorf("web01 ipv4 changes %v, want %v", got, want)
	}
	if got, want := log.states("web01", ""), []State{StateUp, StateDown}; !reflect.DeepEqual(got, want) {
		t.Errorf("web01 host changes %v, want %v", got, want)
	}
	// A heartbeat brings it straight back up.
	if err := beat(t, tr, "web01", IPv4, 1, 2, t0.Add(40*time.Second), time.Second); err != nil {
		t.Fatal(err)
	}
	if s := hostState(tr, "web01"); s != StateUp {
		t.Errorf("after a new heartbeat web01 is %s", s)
	}
}

func TestTimeoutNeverBelowTwoIntervals(t *testing.T) {
	tr := NewTracker(TrackerConfig{Timeout: func(string) time.Duration { return time.Second }})
	t0 := time.Unix(1711234567, 0)
	beat(t, tr, "web01", IPv4, 1, 1, t0, 10*time.Second)
	tr.Sweep(t0.Add(5 * time.Second))
	if c, _ := connection(tr, "web01", IPv4); c.State != StateUp {
		t.Fatalf("a 1 s timeout with a 10 s interval gave %s after 5 s; want UP", c.State)
	}
	tr.Sweep(t0.Add(21 * time.Second))
	if c, _ := connection(tr, "web01", IPv4); c.State != StateDown {
		t.Fatalf("after two intervals: %s, want DOWN", c.State)
	}
}

func TestHostStateFromFamilies(t *testing.T) {
	t0 := time.Unix(1711234567, 0)
	tests := []struct {
		name       string
		v4, v6     time.Duration // last heartbeat before the sweep; < 0: never
		wantHost   State
		wantV4     State
		wantV6     State
		wantConns  int
		wantEvents []State
	}{
		{"both up", 0, 0, StateUp, StateUp, StateUp, 2, []State{StateUp}},
		{"ipv6 late", 0, 2 * time.Second, StateUp, StateUp, StateLate, 2, []State{StateUp}},
		{"ipv6 down", 0, 40 * time.Second, StateDegraded, StateUp, StateDown, 2, []State{StateUp, StateDegraded}},
		{"ipv4 down ipv6 late", 40 * time.Second, 2 * time.Second, StateDegraded, StateDown, StateLate, 2, []State{StateUp, StateDegraded}},
		{"both down", 40 * time.Second, 40 * time.Second, StateDown, StateDown, StateDown, 2, []State{StateUp, StateDown}},
		{"ipv4 only, up", 0, -1, StateUp, StateUp, "", 1, []State{StateUp}},
		{"ipv4 only, down", 40 * time.Second, -1, StateDown, StateDown, "", 1, []State{StateUp, StateDown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &changeLog{}
			tr := NewTracker(TrackerConfig{OnChange: log.add})
			now := t0.Add(time.Minute)
			if tt.v4 >= 0 {
				beat(t, tr, "web01", IPv4, 1, 1, now.Add(-tt.v4), time.Second)
			}
			if tt.v6 >= 0 {
				beat(t, tr, "web01", IPv6, 1, 1, now.Add(-tt.v6), time.Second)
			}
			tr.Sweep(now)
			h, _ := tr.Snapshot("web01")
			if h.State != tt.wantHost || len(h.Connections) != tt.wantConns {
				t.Fatalf("host %s with %d connections, want %s with %d", h.State, len(h.Connections), tt.wantHost, tt.wantConns)
			}
			if c, _ := connection(tr, "web01", IPv4); c.State != tt.wantV4 {
				t.Errorf("ipv4 %q, want %q", c.State, tt.wantV4)
			}
			if c, _ := connection(tr, "web01", IPv6); c.State != tt.wantV6 {
				t.Errorf("ipv6 %q, want %q", c.State, tt.wantV6)
			}
			if got := log.states("web01", ""); !reflect.DeepEqual(got, tt.wantEvents) {
				t.Errorf("host changes %v, want %v", got, tt.wantEvents)
			}
		})
	}
	if _, ok := NewTracker(TrackerConfig{}).Snapshot("never"); ok {
		t.Error("a host never heard from has a snapshot")
	}
}

func TestLossFromSequenceGaps(t *testing.T) {
	tr := NewTracker(TrackerConfig{})
	t0 := time.Unix(1711234567, 0)
	at := func(seq uint64) time.Time { return t0.Add(time.Duration(seq) * time.Second) }
	loss := func() float64 { c, _ := connection(tr, "web01", IPv4); return c.LossPercent }

	for _, seq := range []uint64{1, 2, 4, 5, 6, 8, 9, 10} { // 3 and 7 lost
		if err := beat(t, tr, "web01", IPv4, 7, seq, at(seq), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if got := loss(); got != 20 {
		t.Fatalf("2 of 10 lost: loss %v%%, want 20", got)
	}
	// The window slides: after LossWindow more heartbeats without gaps the
	// old losses have left it.
	for seq := uint64(11); seq <= 10+LossWindow; seq++ {
		beat(t, tr, "web01", IPv4, 7, seq, at(seq), time.Second)
	}
	if got := loss(); got != 0 {
		t.Fatalf("after a clean window: loss %v%%, want 0", got)
	}
	// A gap wider than the window.
	beat(t, tr, "web01", IPv4, 7, 1000, at(1000), time.Second)
	if got := loss(); got != 99 {
		t.Fatalf("after a gap of 889: loss %v%%, want 99", got)
	}
	// A new session starts a new window.
	beat(t, tr, "web01", IPv4, 8, 1, at(1001), time.Second)
	if got := loss(); got != 0 {
		t.Fatalf("new session: loss %v%%, want 0", got)
	}
}

func TestLossWindowBitShifts(t *testing.T) {
	// Every gap size across the 64-bit word boundary, checked against a
	// plain list of arrivals.
	for gap := uint64(1); gap <= 130; gap++ {
		var w lossWindow
		w.reset()
		arrived := []uint64{1}
		seq := uint64(1)
		for _, d := range []uint64{1, gap, 1, 3, gap, 1} {
			seq += d
			w.add(d)
			arrived = append(arrived, seq)
		}
		span := min(seq, LossWindow)
		got := 0
		for _, a := range arrived {
			if a > seq-span {
				got++
			}
		}
		want := float64(int((float64(span)-float64(got))/float64(span)*100*100+0.5)) / 100
		if w.percent() != want {
			t.Fatalf("gap %d: loss %v, want %v", gap, w.percent(), want)
		}
	}
}

func TestReplayAndSessions(t *testing.T) {
	tr := NewTracker(TrackerConfig{})
	t0 := time.Unix(1711234567, 0)
	mustBeat := func(session, seq uint64, at time.Time, want error) {
		t.Helper()
		if err := beat(t, tr, "web01", IPv4, session, seq, at, time.Second); !errors.Is(err, want) {
			t.Fatalf("session %d seq %d: %v, want %v", session, seq, err, want)
		}
	}
	mustBeat(1, 5, t0, nil)
	mustBeat(1, 5, t0.Add(time.Second), errReplay) // same sequence
	mustBeat(1, 4, t0.Add(time.Second), errReplay) // lower sequence
	mustBeat(1, 6, t0.Add(time.Second), nil)
	// The other family has its own sequence numbers.
	if err := beat(t, tr, "web01", IPv6, 1, 1, t0.Add(time.Second), time.Second); err != nil {
		t.Fatal(err)
	}
	// A restarted agent: new session, later send time, sequence from 1.
	mustBeat(2, 1, t0.Add(2*time.Second), nil)
	// The old session's heartbeats, even with higher sequence numbers, are
	// replays now.
	mustBeat(1, 7, t0.Add(time.Second+time.Millisecond), errReplay)
	mustBeat(2, 2, t0.Add(3*time.Second), nil)
}

func TestLatencyFromRTTReports(t *testing.T) {
	tr := NewTracker(TrackerConfig{})
	t0 := time.Unix(1711234567, 0)
	for i, rtt := range []uint32{0, 1000, 2000, 0} {
		p := Packet{Session: 1, Seq: uint64(i + 1), SentNanos: t0.UnixNano() + int64(i), IntervalMS: 1000, RTTMicros: rtt, Host: []byte("web01")}
		if err := tr.observe(p.Host, 0, &p, addr4, t0, false); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := connection(tr, "web01", IPv4)
	// Reports: none, 1 ms, 2 ms, none. The average starts at the first
	// report and moves 20% toward each new one; "none" changes nothing.
	if c.LatencyMS != 2 || c.LatencyAvgMS != 1.2 {
		t.Fatalf("latency %v ms, average %v ms; want 2 and 1.2", c.LatencyMS, c.LatencyAvgMS)
	}
}

func TestSnapshotJSON(t *testing.T) {
	tr := NewTracker(TrackerConfig{})
	at := time.Unix(1711234567, 123_000_000)
	p := Packet{Session: 1, Seq: 1, SentNanos: at.UnixNano(), IntervalMS: 5000, RTTMicros: 210, Host: []byte("web01")}
	tr.observe(p.Host, 0, &p, netip.MustParseAddrPort("127.0.0.1:40000"), at, true)
	h, _ := tr.Snapshot("web01")
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"web01","dyn":true,"state":"UP","since":1711234567.123,"connections":[` +
		`{"family":"ipv4","state":"UP","since":1711234567.123,"address":"127.0.0.1:40000","last_seen":1711234567.123,` +
		`"latency_ms":0.21,"latency_avg_ms":0.21,"loss_percent":0,"interval_ms":5000}],` +
		`"last_seen":1711234567.123,"clock_offset_ms":0.1,"reason":""}`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}
	if hosts := tr.Hosts(); len(hosts) != 1 || hosts[0].Name != "web01" {
		t.Fatalf("Hosts() = %+v", hosts)
	}
	if !tr.Forget("web01") || len(tr.Hosts()) != 0 {
		t.Fatal("Forget did not drop the host")
	}
}

func TestOnChangeMayReadSnapshot(t *testing.T) {
	var tr *Tracker
	var seen []State
	tr = NewTracker(TrackerConfig{OnChange: func(c Change) {
		h, _ := tr.Snapshot(c.Host) // would deadlock if called under the host lock
		seen = append(seen, h.State)
	}})
	beat(t, tr, "web01", IPv4, 1, 1, time.Now(), time.Second)
	if len(seen) != 2 || seen[1] != StateUp {
		t.Fatalf("OnChange saw %v", seen)
	}
}

// TestOnChangeMaySnapshotWhileFamiliesRace feeds both families of one host
// from two goroutines while a sweeper flips them DOWN, with an OnChange that
// reads Snapshot, as the daemon's live feed does. A lock-order inversion
// between applying a packet and reporting a change would hang here.
func TestOnChangeMaySnapshotWhileFamiliesRace(t *testing.T) {
	var tr *Tracker
	tr = NewTracker(TrackerConfig{
		Timeout: func(string) time.Duration { return 2 * time.Second },
		OnChange: func(c Change) {
			time.Sleep(20 * time.Microsecond) // widen the window for the other family
			tr.Snapshot(c.Host)
		},
	})
	base := time.Unix(1711234567, 0)
	const rounds = 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		errs := make(chan error, 2)
		for i := 0; i < rounds; i++ {
			at := base.Add(time.Duration(i) * 10 * time.Second)
			for _, f := range []Family{IPv4, IPv6} {
				go func() { errs <- beat(t, tr, "web01", f, 1, uint64(i+1), at, time.Second) }()
			}
			for range 2 {
				if err := <-errs; err != nil {
					t.Error(err)
					return
				}
			}
			tr.Sweep(at.Add(5 * time.Second))
		}
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("tracker deadlocked: OnChange calling Snapshot while both families are applied")
	}
}
