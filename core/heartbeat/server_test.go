package heartbeat

import (
	"bytes"
	"math"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/testutil"
)

func TestValidHeartbeatIsAckedAndMarksItsFamilyUp(t *testing.T) {
	ts := startServer(t, serverOpts{})
	for _, f := range []Family{IPv4, IPv6} {
		t.Run(string(f), func(t *testing.T) {
			if f == IPv6 && !ts.ipv6 {
				_, why := haveIPv6(t)
				t.Skip(why)
			}
			a := dialRaw(t, ts.srv, f)
			sent := time.Now().UnixNano()
			req := heartbeat(t, keyWeb01, Packet{Session: 99, Seq: 1, SentNanos: sent, IntervalMS: 5000, Host: []byte("web01")})
			a.send(req)
			ack := a.recv(2 * time.Second)
			received := time.Now().UnixNano()
			if ack == nil {
				t.Fatal("no ack")
			}
			if len(ack) > len(req) {
				t.Fatalf("ack of %d bytes for a request of %d", len(ack), len(req))
			}
			var p Packet
			if err := Decode(ack, &p); err != nil || p.Type != TypeAck {
				t.Fatalf("ack does not decode: %v, type %d", err, p.Type)
			}
			if !NewSigner(keyWeb01).Verify(ack) {
				t.Fatal("ack is not signed with the host key")
			}
			if p.Session != 99 || p.Seq != 1 || p.SentNanos != sent {
				t.Fatalf("ack echoes session %d seq %d sent %d", p.Session, p.Seq, p.SentNanos)
			}
			// The server's clock reading lies between the send and the
			// receipt of its ack (one clock, so the order is exact).
			if p.ServerNanos < sent || p.ServerNanos > received {
				t.Fatalf("ack server time %d is outside [%d, %d]", p.ServerNanos, sent, received)
			}
			c, ok := connection(ts.tr, "web01", f)
			if !ok || c.State != StateUp || c.Address != a.localAddr().String() || c.IntervalMS != 5000 {
				t.Fatalf("connection %+v (known %v), want UP from %s", c, ok, a.localAddr())
			}
		})
	}
	if h, _ := ts.tr.Snapshot("web01"); h.State != StateUp {
		t.Fatalf("host %s, want UP", h.State)
	}
}

// TestEveryDropReason sends one bad datagram per case, followed by a valid
// probe heartbeat for another host over the same socket. With one reader per
// socket the server handles them in order, so once the probe's ack is back
// the bad datagram has been handled: it must have been counted under its
// reason, answered with nothing, and left web01's state as it was.
func TestEveryDropReason(t *testing.T) {
	ts := startServer(t, serverOpts{readers: 1})
	now := time.Now()
	web01 := func(p Packet) Packet {
		p.Host = []byte("web01")
		if p.Session == 0 {
			p.Session = 1
		}
		return p
	}
	first := heartbeat(t, keyWeb01, web01(Packet{Seq: 10, SentNanos: now.UnixNano()}))
	valid := heartbeat(t, keyWeb01, web01(Packet{Seq: 11, SentNanos: now.UnixNano() + 1}))
	mod := func(b []byte, f func([]byte)) []byte { b = bytes.Clone(b); f(b); return b }

	tests := []struct {
		name   string
		b      []byte
		reason DropReason
	}{
		{"short: three bytes", []byte("hb\x01"), DropShort},
		{"short: truncated", valid[:len(valid)-1], DropShort},
		{"oversized", make([]byte, MaxPacketSize+50), DropOversized},
		{"bad_version", mod(valid, func(b []byte) { b[2] = 7 }), DropBadVersion},
		{"malformed: magic", mod(valid, func(b []byte) { b[1] = 'x' }), DropMalformed},
		{"malformed: host", mod(valid, func(b []byte) { b[hbHostOff+2] = ' ' }), DropMalformed},
		{"malformed: trailing byte", append(bytes.Clone(valid), 0), DropMalformed},
		{"malformed: ack sent to server", NewSigner(keyWeb01).AppendAck(nil, &Packet{Session: 1, Seq: 12}), DropMalformed},
		{"unknown_host", heartbeat(t, keyWeb01, Packet{Session: 1, Seq: 1, Host: []byte("nobody")}), DropUnknownHost},
		{"bad_mac: wrong key", heartbeat(t, keyDB01, web01(Packet{Seq: 12})), DropBadMAC},
		{"bad_mac: flipped tag bit", mod(heartbeat(t, keyWeb01, web01(Packet{Seq: 12})), func(b []byte) { b[len(b)-1] ^= 1 }), DropBadMAC},
		{"bad_mac: flipped sequence bit", mod(heartbeat(t, keyWeb01, web01(Packet{Seq: 12})), func(b []byte) { b[offSeq+7] ^= 1 }), DropBadMAC},
		{"bad_mac: enroll-derived key for a configured host", heartbeat(t, DeriveHostKey(enrollKey, "web01"), web01(Packet{Seq: 12, Flags: FlagEnrolled})), DropBadMAC},
		{"stale: 6 minutes old", heartbeat(t, keyWeb01, web01(Packet{Seq: 12, SentNanos: now.Add(-6 * time.Minute).UnixNano()})), DropStale},
		{"stale: 6 minutes ahead", heartbeat(t, keyWeb01, web01(Packet{Seq: 12, SentNanos: now.Add(6 * time.Minute).UnixNano()})), DropStale},
		{"replay: same datagram again", valid, DropReplay},
		{"replay: lower sequence", heartbeat(t, keyWeb01, web01(Packet{Seq: 9})), DropReplay},
		{"replay: older session", heartbeat(t, keyWeb01, web01(Packet{Session: 5, Seq: 100, SentNanos: now.UnixNano() - 1})), DropReplay},
	}

	a := dialRaw(t, ts.srv, IPv4)
	probeSeq := uint64(0)
	probe := func() {
		t.Helper()
		probeSeq++
		a.send(heartbeat(t, keyProbe, Packet{Session: 1, Seq: probeSeq, Host: []byte("probe")}))
	}
	for _, b := range [][]byte{first, valid} {
		a.send(b)
		if a.recv(2*time.Second) == nil {
			t.Fatal("no ack for the setup heartbeat")
		}
	}
	// An ack reaches us before the server counts it: wait, or a setup ack
	// counted late shifts every subtest's figures by one.
	testutil.Eventually(t, "the setup acks counted", 10*time.Second, func() bool { return ts.srv.Stats().Acked == 2 })
	before, _ := ts.tr.Snapshot("web01")
	changes := len(ts.log.all())

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st0 := ts.srv.Stats()
			a.send(tt.b)
			probe()
			ack := a.recv(2 * time.Second)
			if ack == nil {
				t.Fatal("no ack for the probe")
			}
			var p Packet
			if Decode(ack, &p) != nil || p.Seq != probeSeq || !NewSigner(keyProbe).Verify(ack) {
				t.Fatalf("the bad datagram was answered: got %x", ack)
			}
			// The ack reaches us before the server counts it as sent.
			testutil.Eventually(t, "the probe's ack counted", 10*time.Second, func() bool { return ts.srv.Stats().Acked > st0.Acked })
			st := ts.srv.Stats()
			if d := st.Dropped[tt.reason] - st0.Dropped[tt.reason]; d != 1 {
				t.Errorf("%s counter moved by %d, want 1", tt.reason, d)
			}
			for r, n := range st.Dropped {
				if r != tt.reason && n != st0.Dropped[r] {
					t.Errorf("%s counter moved too", r)
				}
			}
			if st.Received-st0.Received != 2 || st.Accepted-st0.Accepted != 1 || st.Acked-st0.Acked != 1 {
				t.Errorf("received +%d accepted +%d acked +%d, want 2, 1, 1 (the probe)",
					st.Received-st0.Received, st.Accepted-st0.Accepted, st.Acked-st0.Acked)
			}
			after, _ := ts.tr.Snapshot("web01")
			if tt.reason == DropStale {
				// Verified but refused: the tracker learns why the host is
				// not heard, and nothing else.
				if !strings.HasPrefix(after.Reason, "clock 6m0s ") || after.ClockOffsetMS == nil || math.Abs(*after.ClockOffsetMS) < 6*60e3-1e3 {
					t.Errorf("after a stale heartbeat: reason %q, offset %v", after.Reason, after.ClockOffsetMS)
				}
			}
			if a, b := withoutClock(after), withoutClock(before); !reflect.DeepEqual(a, b) {
				t.Errorf("web01 changed:\n%+v\n%+v", b, a)
			}
			if _, ok := ts.tr.Snapshot("nobody"); ok {
				t.Error("an unknown host got state")
			}
		})
	}
	for _, c := range ts.log.all()[changes:] {
		if c.Host != "probe" {
			t.Errorf("unexpected change %+v", c)
		}
	}
	st := ts.srv.Stats()
	var dropped uint64
	for _, n := range st.Dropped {
		dropped += n
	}
	if st.Received != st.Accepted+dropped || st.Accepted != st.Acked+st.AckErrors {
		t.Errorf("inconsistent stats %+v", st)
	}
	if len(st.Dropped) != len(DropReasons()) {
		t.Errorf("Stats lists %d reasons, want all %d", len(st.Dropped), len(DropReasons()))
	}
}

func TestDynamicHostRegistersWithEnrollDerivedKey(t *testing.T) {
	ts := startServer(t, serverOpts{keys: testKeys(enrollKey)})
	a := dialRaw(t, ts.srv, IPv4)

	// Without the enroll key: signed with a key of the agent's own choosing.
	a.send(heartbeat(t, []byte("guessed"), Packet{Session: 1, Seq: 1, Host: []byte("newhost"), Flags: FlagEnrolled}))
	// With another enroll key.
	a.send(heartbeat(t, DeriveHostKey([]byte("other enroll key"), "newhost"), Packet{Session: 1, Seq: 1, Host: []byte("newhost")}))
	if ack := a.recv(200 * time.Millisecond); ack != nil {
		t.Fatal("a heartbeat without the enroll key was answered")
	}
	if _, ok := ts.tr.Snapshot("newhost"); ok {
		t.Fatal("a host without the enroll key was registered")
	}
	if n := ts.srv.Stats().Dropped[DropBadMAC]; n != 2 {
		t.Fatalf("bad_mac %d, want 2", n)
	}

	a.send(heartbeat(t, DeriveHostKey(enrollKey, "newhost"), Packet{Session: 1, Seq: 1, Host: []byte("newhost"), Flags: FlagEnrolled}))
	ack := a.recv(2 * time.Second)
	if ack == nil || !NewSigner(DeriveHostKey(enrollKey, "newhost")).Verify(ack) {
		t.Fatal("no ack signed with the derived key")
	}
	h, ok := ts.tr.Snapshot("newhost")
	if !ok || !h.Dynamic || h.State != StateUp {
		t.Fatalf("snapshot %+v, want a dynamic host UP", h)
	}
	var registered bool
	for _, c := range ts.log.all() {
		if c.Host == "newhost" && c.Family == "" && c.From == "" && c.To == StateUp {
			registered = c.Dynamic
		}
	}
	if !registered {
		t.Fatalf("no host change with Dynamic=true in %+v", ts.log.all())
	}
}

func TestEnrollmentRefusedWithoutEnrollKey(t *testing.T) {
	ts := startServer(t, serverOpts{keys: testKeys(nil)})
	a := dialRaw(t, ts.srv, IPv4)
	a.send(heartbeat(t, DeriveHostKey(enrollKey, "newhost"), Packet{Session: 1, Seq: 1, Host: []byte("newhost"), Flags: FlagEnrolled}))
	if ack := a.recv(200 * time.Millisecond); ack != nil {
		t.Fatal("answered")
	}
	if n := ts.srv.Stats().Dropped[DropUnknownHost]; n != 1 {
		t.Fatalf("unknown_host %d, want 1", n)
	}
}

func TestSetKeysRotatesKeys(t *testing.T) {
	ts := startServer(t, serverOpts{})
	a := dialRaw(t, ts.srv, IPv4)
	seq := uint64(0)
	send := func(key []byte) bool {
		seq++
		a.send(heartbeat(t, key, Packet{Session: 1, Seq: seq, Host: []byte("web01")}))
		return a.recv(300*time.Millisecond) != nil
	}
	if !send(keyWeb01) {
		t.Fatal("old key refused before the reload")
	}
	newKey := []byte("web01-rotated-key")
	ts.srv.SetKeys(KeysFrom(map[string][]byte{"web01": newKey}, nil))
	if send(keyWeb01) {
		t.Fatal("old key still accepted after the reload")
	}
	if !send(newKey) {
		t.Fatal("new key refused after the reload")
	}
	ts.srv.SetKeys(KeysFrom(nil, nil))
	if send(newKey) {
		t.Fatal("a host removed from the configuration is still accepted")
	}
	if n := ts.srv.Stats().Dropped[DropUnknownHost]; n != 1 {
		t.Fatalf("unknown_host %d, want 1", n)
	}
}

func TestHandleDoesNotAllocate(t *testing.T) {
	tr := NewTracker(TrackerConfig{})
	srv := newServer(ServerConfig{Keys: testKeys(nil), Tracker: tr})
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	s := NewSigner(keyWeb01)
	p := Packet{Session: 1, IntervalMS: 1000, Host: []byte("web01")}
	buf := make([]byte, 0, MaxPacketSize)
	out := make([]byte, 0, AckSize)
	allocs := testing.AllocsPerRun(1000, func() {
		p.Seq++
		now := time.Now()
		p.SentNanos = now.UnixNano()
		b, _ := s.AppendHeartbeat(buf[:0], &p)
		if _, ok := srv.handle(b, from, 0, out[:0], now, &srv.ctrs[0]); !ok {
			t.Fatalf("heartbeat %d dropped: %+v", p.Seq, srv.Stats())
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per heartbeat, want 0", allocs)
	}
}

// withoutClock drops what a refused heartbeat may change: the clock offset
// and the reason.
func withoutClock(h HostStatus) HostStatus {
	h.ClockOffsetMS, h.Reason = nil, ""
	return h
}
