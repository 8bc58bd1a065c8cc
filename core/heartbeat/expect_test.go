package heartbeat

import (
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/testutil"
)

// clockLog collects OnClock reports.
type clockLog struct {
	mu      sync.Mutex
	reports []clockCall
}

type clockCall struct {
	host    string
	offset  time.Duration
	refused bool
	at      time.Time
}

func (l *clockLog) add(host string, offset time.Duration, refused bool, at time.Time) {
	l.mu.Lock()
	l.reports = append(l.reports, clockCall{host, offset, refused, at})
	l.mu.Unlock()
}

func (l *clockLog) all() []clockCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]clockCall(nil), l.reports...)
}

// hostChanges returns the host-level changes of host.
func (l *changeLog) hostChanges(host string) []Change {
	var out []Change
	for _, c := range l.all() {
		if c.Host == host && c.Family == "" {
			out = append(out, c)
		}
	}
	return out
}

func TestExpectedHostNeverHeardBecomesDown(t *testing.T) {
	log := &changeLog{}
	tr := NewTracker(TrackerConfig{
		Timeout:  func(string) time.Duration { return 30 * time.Second },
		OnChange: log.add,
	})
	start := time.Unix(1711234567, 0)
	tr.Expect(Expectation{Host: "web01", From: start})

	// Known but waiting: a snapshot exists, with no state yet.
	h, ok := tr.Snapshot("web01")
	if !ok || h.State != "" || len(h.Connections) != 0 || h.LastSeen != 0 {
		t.Fatalf("waiting host: ok=%v %+v", ok, h)
	}
	tr.Sweep(start.Add(29 * time.Second))
	if s := hostState(tr, "web01"); s != "" {
		t.Fatalf("before its timeout the host is %q, want waiting", s)
	}
	if n := len(log.all()); n != 0 {
		t.Fatalf("changes before the timeout: %+v", log.all())
	}
	down := start.Add(31 * time.Second)
	tr.Sweep(down)
	tr.Sweep(down.Add(time.Second)) // reported once
	got := log.all()
	want := []Change{{Host: "web01", From: "", To: StateDown, Time: down}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("changes\n got %+v\nwant %+v", got, want)
	}
	if s := hostState(tr, "web01"); s != StateDown {
		t.Fatalf("host %q, want DOWN", s)
	}

	// Its first heartbeat brings it up.
	if err := beat(t, tr, "web01", IPv4, 1, 1, down.Add(5*time.Second), time.Second); err != nil {
		t.Fatal(err)
	}
	if got := log.states("web01", ""); !reflect.DeepEqual(got, []State{StateDown, StateUp}) {
		t.Fatalf("host changes %v", got)
	}
	hc := log.hostChanges("web01")[1]
	if hc.From != StateDown || !hc.LastSeen.Equal(down.Add(5*time.Second)) || !reflect.DeepEqual(hc.Families, []Family{IPv4}) {
		t.Fatalf("recovery change %+v", hc)
	}
}

func TestExpectIsCountedFromTheLaterOfStartAndAddition(t *testing.T) {
	log := &changeLog{}
	tr := NewTracker(TrackerConfig{Timeout: func(string) time.Duration { return 30 * time.Second }, OnChange: log.add})
	start := time.Unix(1711234567, 0)
	tr.Expect(Expectation{Host: "web01", From: start})
	// Added by a reload a minute later.
	reload := start.Add(time.Minute)
	tr.Sweep(reload)
	tr.Expect(Expectation{Host: "web01", From: reload}) // already expected: keeps its start
	tr.Expect(Expectation{Host: "db01", From: reload})
	tr.Sweep(reload.Add(20 * time.Second))
	if s := hostState(tr, "db01"); s != "" {
		t.Fatalf("db01 added 20 s ago is %q", s)
	}
	if s := hostState(tr, "web01"); s != StateDown {
		t.Fatalf("web01 is %q", s)
	}
	tr.Sweep(reload.Add(31 * time.Second))
	if s := hostState(tr, "db01"); s != StateDown {
		t.Fatalf("db01 is %q after its timeout", s)
	}
	// Removed on reload: forgotten, nothing reported.
	n := len(log.all())
	if !tr.Forget("db01") {
		t.Fatal("db01 not known")
	}
	tr.Sweep(reload.Add(time.Hour))
	if len(log.all()) != n {
		t.Fatalf("changes after Forget: %+v", log.all()[n:])
	}
	// Unexpect drops a host never heard from, keeps one that was.
	beat(t, tr, "web01", IPv4, 1, 1, reload.Add(time.Hour), time.Second)
	tr.Expect(Expectation{Host: "dyn01", Dynamic: true, From: reload})
	tr.Unexpect("dyn01")
	tr.Unexpect("web01")
	if _, ok := tr.Snapshot("dyn01"); ok {
		t.Fatal("an unexpected host never heard from is still known")
	}
	if _, ok := tr.Snapshot("web01"); !ok {
		t.Fatal("a heard host was dropped by Unexpect")
	}
}

func TestPersistedFamiliesAfterRestart(t *testing.T) {
	log := &changeLog{}
	tr := NewTracker(TrackerConfig{Timeout: func(string) time.Duration { return 30 * time.Second }, OnChange: log.add})
	before := time.Unix(1711230000, 0) // last heard before the restart
	start := time.Unix(1711234567, 0)
	tr.Expect(Expectation{Host: "web01", From: start, LastSeen: map[Family]time.Time{IPv4: before, IPv6: before.Add(-time.Minute)}})

	// It comes back on IPv4 only.
	at := start.Add(2 * time.Second)
	if err := beat(t, tr, "web01", IPv4, 9, 1, at, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	tr.Sweep(start.Add(20 * time.Second))
	if s := hostState(tr, "web01"); s != StateUp {
		t.Fatalf("before the timeout the host is %q", s)
	}
	if err := beat(t, tr, "web01", IPv4, 9, 2, start.Add(25*time.Second), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	down := start.Add(31 * time.Second)
	tr.Sweep(down)
	if s := hostState(tr, "web01"); s != StateDegraded {
		t.Fatalf("host %q, want DEGRADED", s)
	}
	c6, ok := connection(tr, "web01", IPv6)
	if !ok || c6.State != StateDown || c6.LastSeen != float64(before.Add(-time.Minute).Unix()) || c6.Address != "" {
		t.Fatalf("ipv6 %+v, want DOWN last seen before the restart", c6)
	}
	var fam, host *Change
	for _, c := range log.all() {
		c := c
		if c.To == StateDown && c.Family == IPv6 {
			fam = &c
		}
		if c.To == StateDegraded && c.Family == "" {
			host = &c
		}
	}
	if fam == nil || fam.From != "" || !fam.LastSeen.Equal(before.Add(-time.Minute)) || fam.Time != down {
		t.Fatalf("ipv6 change %+v", fam)
	}
	if host == nil || host.From != StateUp || !reflect.DeepEqual(host.Families, []Family{IPv4, IPv6}) ||
		!host.LastSeen.Equal(start.Add(25*time.Second)) {
		t.Fatalf("host change %+v", host)
	}

	// A host whose agent died while the daemon was down: both families
	// DOWN after the timeout, then the host, with the persisted times.
	log2 := &changeLog{}
	tr2 := NewTracker(TrackerConfig{Timeout: func(string) time.Duration { return 30 * time.Second }, OnChange: log2.add})
	tr2.Expect(Expectation{Host: "web01", Dynamic: true, From: start, LastSeen: map[Family]time.Time{IPv4: before, IPv6: before}})
	tr2.Sweep(start.Add(31 * time.Second))
	got := log2.all()
	if len(got) != 3 || got[0].Family != IPv4 || got[1].Family != IPv6 || got[2].Family != "" {
		t.Fatalf("changes %+v: want ipv4, ipv6, then the host", got)
	}
	for _, c := range got {
		if c.To != StateDown || !c.LastSeen.Equal(before) || !c.Dynamic {
			t.Errorf("change %+v", c)
		}
	}
	if !reflect.DeepEqual(got[2].Families, []Family{IPv4, IPv6}) {
		t.Errorf("host change families %v", got[2].Families)
	}
	h, _ := tr2.Snapshot("web01")
	if h.LastSeen != float64(before.Unix()) || len(h.Connections) != 2 {
		t.Errorf("snapshot %+v", h)
	}
	if seen := tr2.Seen(); len(seen) != 1 || !seen[0].LastSeen[IPv4].Equal(before) || !seen[0].LastSeen[IPv6].Equal(before) {
		t.Errorf("Seen() = %+v", seen)
	}
}

func TestClockOffsetEstimate(t *testing.T) {
	clocks := &clockLog{}
	tr := NewTracker(TrackerConfig{OnClock: clocks.add})
	t0 := time.Unix(1711234567, 0)
	// The agent's clock is 2 s ahead; the one-way delay is 10 ms (RTT 20 ms):
	// it sends at its 2.000 s ahead time, the daemon receives 10 ms later.
	send := func(seq uint64, recv time.Time, rttMicros uint32) {
		t.Helper()
		sent := recv.Add(-10 * time.Millisecond).Add(2 * time.Second)
		p := Packet{Session: 1, Seq: seq, SentNanos: sent.UnixNano(), IntervalMS: 1000, RTTMicros: rttMicros, Host: []byte("web01")}
		if err := tr.observe(p.Host, 0, &p, addr4, recv, false); err != nil {
			t.Fatal(err)
		}
	}
	send(1, t0, 20_000)
	h, _ := tr.Snapshot("web01")
	if h.ClockOffsetMS == nil || *h.ClockOffsetMS != 2000 {
		t.Fatalf("offset %v, want 2000 ms", h.ClockOffsetMS)
	}
	if r := clocks.all(); len(r) != 1 || r[0].offset != 2*time.Second || r[0].refused || r[0].host != "web01" || !r[0].at.Equal(t0) {
		t.Fatalf("first report %+v", r)
	}
	// One outlier (a 300 ms queueing delay) does not move the median.
	for i := uint64(2); i <= 5; i++ {
		send(i, t0.Add(time.Duration(i)*time.Second), 20_000)
	}
	p := Packet{Session: 1, Seq: 6, SentNanos: t0.Add(6*time.Second + 2*time.Second - 10*time.Millisecond).UnixNano(), IntervalMS: 1000, RTTMicros: 20_000, Host: []byte("web01")}
	tr.observe(p.Host, 0, &p, addr4, t0.Add(6*time.Second+300*time.Millisecond), false)
	h, _ = tr.Snapshot("web01")
	if *h.ClockOffsetMS != 2000 {
		t.Fatalf("offset after an outlier %v, want 2000", *h.ClockOffsetMS)
	}
	// Reports: at most every 10 s while steady.
	if r := clocks.all(); len(r) != 1 {
		t.Fatalf("reports within 10 s: %+v", r)
	}
	send(7, t0.Add(11*time.Second), 20_000)
	if r := clocks.all(); len(r) != 2 || r[1].offset != 2*time.Second {
		t.Fatalf("reports after 11 s: %+v", r)
	}
}

func TestStaleHeartbeatRecordsRefusalAndReason(t *testing.T) {
	log := &changeLog{}
	clocks := &clockLog{}
	tr := NewTracker(TrackerConfig{Timeout: func(string) time.Duration { return 30 * time.Second }, OnChange: log.add, OnClock: clocks.add})
	srv := newServer(ServerConfig{Keys: testKeys(nil), Tracker: tr})
	start := time.Unix(1711234567, 0)
	tr.Expect(Expectation{Host: "web01", From: start, LastSeen: map[Family]time.Time{IPv4: start.Add(-time.Hour)}})
	from := netip.MustParseAddrPort("192.0.2.7:40000")
	ahead := 6*time.Minute + 12*time.Second
	for i := range 3 {
		now := start.Add(time.Duration(i) * time.Second)
		pkt := heartbeat(t, keyWeb01, Packet{Session: 5, Seq: uint64(i + 1), SentNanos: now.Add(ahead).UnixNano(), Host: []byte("web01")})
		if _, ok := srv.handle(pkt, from, 0, nil, now, &srv.ctrs[0]); ok {
			t.Fatal("a heartbeat 6 min ahead was accepted")
		}
	}
	if st := srv.Stats(); st.Dropped[DropStale] != 3 || st.Accepted != 0 {
		t.Fatalf("stats %+v", st)
	}
	r := clocks.all()
	if len(r) != 1 || !r[0].refused || r[0].offset != ahead || !r[0].at.Equal(start) {
		t.Fatalf("clock reports %+v: want one refused report at once", r)
	}
	h, _ := tr.Snapshot("web01")
	if h.Reason != "clock 6m12s ahead of hbd" || h.State != "" {
		t.Fatalf("snapshot reason %q state %q", h.Reason, h.State)
	}
	// Still refused when the timeout runs out: DOWN with the reason.
	tr.Sweep(start.Add(31 * time.Second))
	var hostDown *Change
	for _, c := range log.all() {
		c := c
		if c.Family == "" && c.To == StateDown {
			hostDown = &c
		}
		if c.To == StateDown && c.Reason != "clock 6m12s ahead of hbd" {
			t.Errorf("change without the reason: %+v", c)
		}
	}
	if hostDown == nil || !hostDown.LastSeen.Equal(start.Add(-time.Hour)) {
		t.Fatalf("host DOWN change %+v", hostDown)
	}
	// A replay of a refused heartbeat is not evidence again, and a
	// heartbeat within the window clears the refusal.
	now := start.Add(40 * time.Second)
	pkt := heartbeat(t, keyWeb01, Packet{Session: 5, Seq: 4, SentNanos: now.Add(time.Second).UnixNano(), Host: []byte("web01")})
	if _, ok := srv.handle(pkt, from, 0, nil, now, &srv.ctrs[0]); !ok {
		t.Fatalf("a heartbeat 1 s ahead was dropped: %+v", srv.Stats())
	}
	r = clocks.all()
	if last := r[len(r)-1]; last.refused {
		t.Fatalf("last clock report %+v: still refused", last)
	}
	h, _ = tr.Snapshot("web01")
	if h.Reason != "" || h.State != StateUp {
		t.Fatalf("after a good heartbeat: %q %q", h.State, h.Reason)
	}
	n := len(clocks.all())
	replayed := heartbeat(t, keyWeb01, Packet{Session: 5, Seq: 2, SentNanos: start.Add(time.Second + ahead).UnixNano(), Host: []byte("web01")})
	srv.handle(replayed, from, 0, nil, now.Add(time.Second), &srv.ctrs[0])
	if h, _ = tr.Snapshot("web01"); h.Reason != "" || len(clocks.all()) != n {
		t.Fatalf("a replayed refused heartbeat counted: reason %q, reports %+v", h.Reason, clocks.all()[n:])
	}
	// A clock behind is named so.
	if got := skewReason(-90 * time.Second); got != "clock 1m30s behind hbd" {
		t.Errorf("skewReason(-90s) = %q", got)
	}
}

// TestAgentWithClockAheadIsRefusedAndSaysWhy runs a real client whose clock
// is 10 minutes ahead against a real server: its heartbeats are refused,
// the tracker records why and reports the offset, the host goes DOWN with
// that reason after its timeout, and the client warns that no acks arrive.
func TestAgentWithClockAheadIsRefusedAndSaysWhy(t *testing.T) {
	clocks := &clockLog{}
	ts := startServerWith(t, TrackerConfig{OnClock: clocks.add, Timeout: func(string) time.Duration { return 30 * time.Second }})
	// The daemon started 29 s ago; the agent's clock has just gone wrong.
	ts.tr.Expect(Expectation{Host: "web01", From: time.Now().Add(-29 * time.Second)})
	agentLog := &testutil.Buffer{}
	runClient(t, ClientConfig{
		Host: "web01", Key: keyWeb01, Interval: 50 * time.Millisecond,
		Addr4:  ts.srv.Addr(IPv4).String(),
		Logger: hclog.New(&hclog.LoggerOptions{Output: agentLog, Level: hclog.Info}),
		Now:    func() time.Time { return time.Now().Add(10 * time.Minute) },
	})
	testutil.Eventually(t, "a refused clock report", 10*time.Second, func() bool {
		r := clocks.all()
		return len(r) > 0 && r[0].refused
	})
	if r := clocks.all()[0]; r.host != "web01" || r.offset < 10*time.Minute-time.Second || r.offset > 10*time.Minute+time.Second {
		t.Fatalf("clock report %+v", r)
	}
	h, _ := ts.tr.Snapshot("web01")
	if h.Reason != "clock 10m0s ahead of hbd" || h.State != "" {
		t.Fatalf("snapshot %q %q", h.State, h.Reason)
	}
	ts.tr.Sweep(time.Now().Add(2 * time.Second))
	if h, _ = ts.tr.Snapshot("web01"); h.State != StateDown || h.Reason != "clock 10m0s ahead of hbd" {
		t.Fatalf("after the timeout: %q %q", h.State, h.Reason)
	}
	changes := ts.log.hostChanges("web01")
	if len(changes) != 1 || changes[0].To != StateDown || changes[0].Reason != "clock 10m0s ahead of hbd" {
		t.Fatalf("host changes %+v", changes)
	}
	testutil.Eventually(t, "the agent's warning", 10*time.Second, func() bool {
		return strings.Contains(strings.Join(agentLog.Lines(), "\n"), "no heartbeat acks from hbd over ipv4 for")
	})
	if st := ts.srv.Stats(); st.Accepted != 0 || st.Dropped[DropStale] == 0 {
		t.Fatalf("stats %+v", st)
	}
}
