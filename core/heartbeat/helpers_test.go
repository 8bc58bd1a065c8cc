package heartbeat

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// Test fixtures shared by the tests and benchmarks of this package.

var (
	keyWeb01  = []byte("web01-secret-key-0123456789abcdef")
	keyDB01   = []byte("db01-secret-key-0123456789abcdef")
	keyProbe  = []byte("probe-secret-key-0123456789abcdef")
	enrollKey = []byte("enroll-secret-0123456789abcdef")
)

func testKeys(enroll []byte) KeyFunc {
	return KeysFrom(map[string][]byte{"web01": keyWeb01, "db01": keyDB01, "probe": keyProbe}, enroll)
}

// haveIPv6 reports whether the machine has an IPv6 loopback; without one the
// IPv6 halves of the tests are skipped with the reason.
func haveIPv6(t testing.TB) (bool, string) {
	t.Helper()
	c, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("[::1]:0")))
	if err != nil {
		return false, "no IPv6 loopback on this machine: " + err.Error()
	}
	c.Close()
	return true, ""
}

// changeLog collects the tracker's changes.
type changeLog struct {
	mu      sync.Mutex
	changes []Change
}

func (l *changeLog) add(c Change) {
	l.mu.Lock()
	l.changes = append(l.changes, c)
	l.mu.Unlock()
}

func (l *changeLog) all() []Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Change(nil), l.changes...)
}

// states returns the successive To states reported for host and family
// (family "" for the host itself).
func (l *changeLog) states(host string, f Family) []State {
	var out []State
	for _, c := range l.all() {
		if c.Host == host && c.Family == f {
			out = append(out, c.To)
		}
	}
	return out
}

type testServer struct {
	srv  *Server
	tr   *Tracker
	log  *changeLog
	ipv6 bool
}

type serverOpts struct {
	keys    KeyFunc
	timeout time.Duration
	sweep   time.Duration // 0: no sweeper
	readers int
}

// startServer starts a server on 127.0.0.1 and, when available, ::1, both on
// system-chosen ports, stopped when the test ends.
func startServer(t testing.TB, o serverOpts) *testServer {
	t.Helper()
	return startServerOpts(t, o, TrackerConfig{
		Timeout:       func(string) time.Duration { return o.timeout },
		SweepInterval: o.sweep,
	})
}

// startServerWith is startServer with the tracker configured by tc (its
// OnChange is the test server's change log).
func startServerWith(t testing.TB, tc TrackerConfig) *testServer {
	t.Helper()
	return startServerOpts(t, serverOpts{}, tc)
}

func startServerOpts(t testing.TB, o serverOpts, tc TrackerConfig) *testServer {
	t.Helper()
	if o.keys == nil {
		o.keys = testKeys(nil)
	}
	ts := &testServer{log: &changeLog{}}
	ts.ipv6, _ = haveIPv6(t)
	tc.OnChange = ts.log.add
	ts.tr = NewTracker(tc)
	cfg := ServerConfig{Addr4: "127.0.0.1:0", Keys: o.keys, Tracker: ts.tr, Readers: o.readers}
	if ts.ipv6 {
		cfg.Addr6 = "[::1]:0"
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(ctx) })
	if o.sweep > 0 {
		wg.Go(func() { ts.tr.Run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return ts
}

// rawAgent sends hand-made datagrams to one of the server's sockets and
// reads what comes back.
type rawAgent struct {
	t    testing.TB
	conn *net.UDPConn
	buf  []byte
}

func dialRaw(t testing.TB, srv *Server, f Family) *rawAgent {
	t.Helper()
	network := "udp4"
	if f == IPv6 {
		network = "udp6"
	}
	c, err := net.DialUDP(network, nil, net.UDPAddrFromAddrPort(srv.Addr(f)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawAgent{t: t, conn: c, buf: make([]byte, 2*MaxPacketSize)}
}

func (a *rawAgent) send(b []byte) {
	a.t.Helper()
	if _, err := a.conn.Write(b); err != nil {
		a.t.Fatal(err)
	}
}

// recv returns the next datagram, or nil after wait.
func (a *rawAgent) recv(wait time.Duration) []byte {
	a.t.Helper()
	a.conn.SetReadDeadline(time.Now().Add(wait))
	n, err := a.conn.Read(a.buf)
	if err != nil {
		return nil
	}
	return append([]byte(nil), a.buf[:n]...)
}

func (a *rawAgent) localAddr() netip.AddrPort {
	return a.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// heartbeat builds a signed heartbeat for host under key.
func heartbeat(t testing.TB, key []byte, p Packet) []byte {
	t.Helper()
	if p.IntervalMS == 0 {
		p.IntervalMS = 1000
	}
	if p.SentNanos == 0 {
		p.SentNanos = time.Now().UnixNano()
	}
	b, err := NewSigner(key).AppendHeartbeat(nil, &p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// connection returns host's connection state for family f.
func connection(tr *Tracker, host string, f Family) (ConnectionStatus, bool) {
	h, ok := tr.Snapshot(host)
	if !ok {
		return ConnectionStatus{}, false
	}
	for _, c := range h.Connections {
		if c.Family == f {
			return c, true
		}
	}
	return ConnectionStatus{}, false
}

func hostState(tr *Tracker, host string) State {
	h, _ := tr.Snapshot(host)
	return h.State
}
