package heartbeat

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/testutil"
)

// runClient starts c and stops it when the test ends.
func runClient(t *testing.T, cfg ClientConfig) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return c
}

func TestCutIPv6PathMakesHostDegraded(t *testing.T) {
	if ok, why := haveIPv6(t); !ok {
		t.Skip(why)
	}
	ts := startServer(t, serverOpts{timeout: 300 * time.Millisecond, sweep: 10 * time.Millisecond})
	c := runClient(t, ClientConfig{
		Host: "web01", Key: keyWeb01, Interval: 50 * time.Millisecond,
		Addr4: ts.srv.Addr(IPv4).String(), Addr6: ts.srv.Addr(IPv6).String(),
	})
	testutil.Eventually(t, "both families UP with latency reported", 10*time.Second, func() bool {
		c4, _ := connection(ts.tr, "web01", IPv4)
		c6, _ := connection(ts.tr, "web01", IPv6)
		return c4.State == StateUp && c6.State == StateUp && c4.LatencyMS > 0 && c6.LatencyMS > 0
	})
	if s := hostState(ts.tr, "web01"); s != StateUp {
		t.Fatalf("host %s, want UP", s)
	}

	c.Pause(IPv6, true)
	testutil.Eventually(t, "ipv4 UP, ipv6 DOWN, host DEGRADED", 10*time.Second, func() bool {
		c4, _ := connection(ts.tr, "web01", IPv4)
		c6, _ := connection(ts.tr, "web01", IPv6)
		return c4.State == StateUp && c6.State == StateDown && hostState(ts.tr, "web01") == StateDegraded
	})
	// On a loaded machine a family may turn LATE for a moment and recover,
	// so only the ends of the histories are exact.
	if got := ts.log.states("web01", IPv6); !endsWith(got, StateLate, StateDown) {
		t.Fatalf("ipv6 went %v, want LATE then DOWN at the end", got)
	}
	if got := ts.log.states("web01", ""); !endsWith(got, StateUp, StateDegraded) || slices.Contains(got, StateDown) {
		t.Fatalf("host went %v, want UP then DEGRADED, never DOWN", got)
	}
	if got := ts.log.states("web01", IPv4); slices.Contains(got, StateDown) {
		t.Fatalf("ipv4 went %v while only ipv6 was cut", got)
	}

	// The agent's view for its logs: IPv4 still acked, IPv6 not.
	st4, st6 := c.Status(IPv4), c.Status(IPv6)
	if !st6.Paused || st4.Paused || st4.Acked == 0 || st4.LastRTT <= 0 || st4.LastAck.Before(st6.LastAck) {
		t.Fatalf("client status ipv4 %+v ipv6 %+v", st4, st6)
	}

	c.Pause(IPv6, false)
	testutil.Eventually(t, "host UP again", 10*time.Second, func() bool { return hostState(ts.tr, "web01") == StateUp })
	// Heartbeats sent while the path was cut count as lost.
	if c6, _ := connection(ts.tr, "web01", IPv6); c6.LossPercent == 0 {
		t.Errorf("ipv6 loss 0%% after a cut")
	}
}

func TestClientLossShowsOnServer(t *testing.T) {
	ts := startServer(t, serverOpts{timeout: time.Second, sweep: 10 * time.Millisecond})
	c := runClient(t, ClientConfig{Host: "web01", Key: keyWeb01, Interval: 20 * time.Millisecond, Addr4: ts.srv.Addr(IPv4).String()})
	testutil.Eventually(t, "ipv4 UP", 10*time.Second, func() bool { c4, _ := connection(ts.tr, "web01", IPv4); return c4.State == StateUp })
	c.Pause(IPv4, true)
	time.Sleep(70 * time.Millisecond) // about three heartbeats lost
	c.Pause(IPv4, false)
	testutil.Eventually(t, "loss reported", 10*time.Second, func() bool {
		c4, _ := connection(ts.tr, "web01", IPv4)
		return c4.LossPercent > 0 && c4.State == StateUp
	})
	if _, ok := connection(ts.tr, "web01", IPv6); ok {
		t.Fatal("an IPv4-only client has an ipv6 connection")
	}
}

func TestEnrolledClientRegistersDynamicHost(t *testing.T) {
	ts := startServer(t, serverOpts{keys: testKeys(enrollKey)})
	runClient(t, ClientConfig{Host: "fresh01", EnrollKey: enrollKey, Interval: 50 * time.Millisecond, Addr4: ts.srv.Addr(IPv4).String()})
	bad := runClient(t, ClientConfig{Host: "fresh02", EnrollKey: []byte("not the enroll key"), Interval: 50 * time.Millisecond, Addr4: ts.srv.Addr(IPv4).String()})
	testutil.Eventually(t, "fresh01 registered", 10*time.Second, func() bool {
		h, ok := ts.tr.Snapshot("fresh01")
		return ok && h.Dynamic && h.State == StateUp
	})
	testutil.Eventually(t, "fresh02 refused twice", 10*time.Second, func() bool { return ts.srv.Stats().Dropped[DropBadMAC] >= 2 })
	if _, ok := ts.tr.Snapshot("fresh02"); ok || bad.Status(IPv4).Acked != 0 {
		t.Fatal("a client with the wrong enroll key was registered or acked")
	}
}

func TestClientIgnoresForgedAcks(t *testing.T) {
	// A fake server that answers every heartbeat with acks signed with the
	// wrong key, for another session, and for a sequence never sent.
	pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, MaxPacketSize)
		var p Packet
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if Decode(buf[:n], &p) != nil {
				continue
			}
			wrongKey := NewSigner(keyDB01).AppendAck(nil, &p)
			q := p
			q.Session++
			otherSession := NewSigner(keyWeb01).AppendAck(nil, &q)
			q = p
			q.Seq += 1000
			unsent := NewSigner(keyWeb01).AppendAck(nil, &q)
			for _, b := range [][]byte{wrongKey, otherSession, unsent, []byte("junk")} {
				pc.WriteToUDPAddrPort(b, from)
			}
		}
	}()
	c := runClient(t, ClientConfig{Host: "web01", Key: keyWeb01, Interval: 20 * time.Millisecond, Addr4: pc.LocalAddr().String()})
	testutil.Eventually(t, "forged acks seen", 10*time.Second, func() bool { return c.Status(IPv4).BadAcks >= 8 })
	if st := c.Status(IPv4); st.Acked != 0 || st.LastRTT != 0 {
		t.Fatalf("forged acks accepted: %+v", st)
	}
}

func TestNewClientValidates(t *testing.T) {
	ok := ClientConfig{Host: "web01", Key: keyWeb01, Addr4: "127.0.0.1:50003"}
	for name, mutate := range map[string]func(*ClientConfig){
		"bad host":           func(c *ClientConfig) { c.Host = "web 01" },
		"no key":             func(c *ClientConfig) { c.Key = nil },
		"both keys":          func(c *ClientConfig) { c.EnrollKey = enrollKey },
		"no address":         func(c *ClientConfig) { c.Addr4 = "" },
		"interval too short": func(c *ClientConfig) { c.Interval = time.Millisecond },
		"fractional ms":      func(c *ClientConfig) { c.Interval = 1500 * time.Microsecond },
	} {
		cfg := ok
		mutate(&cfg)
		if _, err := NewClient(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	c, err := NewClient(ok)
	if err != nil {
		t.Fatal(err)
	}
	if st := c.Status(IPv6); st.Enabled {
		t.Error("ipv6 enabled without an address")
	}
	if c2, _ := NewClient(ok); c2.Session() == c.Session() {
		t.Error("two clients share a session id")
	}
}

func endsWith(got []State, want ...State) bool {
	return len(got) >= len(want) && slices.Equal(got[len(got)-len(want):], want)
}

func TestClientWarnsWhenNoAcksArriveAtMostEveryFiveMinutes(t *testing.T) {
	out := &testutil.Buffer{}
	log := hclog.New(&hclog.LoggerOptions{Output: out, Level: hclog.Info})
	t0 := time.Unix(1711234567, 0)
	f := &clientFamily{family: IPv6, addr: "hbd.example.net:50003", started: t0}
	const after = 30 * time.Second // three intervals of 10 s
	f.checkAcks(log, t0.Add(after), after)
	if n := len(out.Lines()); n != 0 {
		t.Fatalf("warned before %v without acks: %v", after, out.Lines())
	}
	f.checkAcks(log, t0.Add(31*time.Second), after)
	f.checkAcks(log, t0.Add(41*time.Second), after)
	f.checkAcks(log, t0.Add(4*time.Minute), after)
	lines := out.Lines()
	if len(lines) != 1 || !strings.Contains(lines[0], "[WARN]  no heartbeat acks from hbd over ipv6 for 31s: check the host key, the daemon address and this host's clock") ||
		!strings.Contains(lines[0], "last_ack=never") {
		t.Fatalf("lines %q", lines)
	}
	f.checkAcks(log, t0.Add(31*time.Second+AckWarnEvery), after)
	if n := len(out.Lines()); n != 2 {
		t.Fatalf("%d lines after five more minutes, want 2", n)
	}
	// An ack ends the outage; the next one is warned about at once.
	f.sentAt[1] = pendingHeartbeat{seq: 1, at: t0.Add(6 * time.Minute)}
	f.ack(log, true, 1, t0.Add(6*time.Minute))
	f.checkAcks(log, t0.Add(6*time.Minute+20*time.Second), after)
	f.checkAcks(log, t0.Add(6*time.Minute+31*time.Second), after)
	lines = out.Lines()
	if len(lines) != 4 || !strings.Contains(lines[2], "server reachable") || !strings.Contains(lines[3], "for 31s") {
		t.Fatalf("after recovery and a new outage: %q", lines)
	}
}
