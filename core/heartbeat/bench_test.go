package heartbeat

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// benchHosts is the simulated fleet: host names and keys, and the KeyFunc
// that knows them.
type benchHosts struct {
	names   []string
	keyOf   [][]byte
	signers []*Signer // for single-goroutine use only
	keys    KeyFunc
}

func newBenchHosts(n int) *benchHosts {
	h := &benchHosts{}
	m := make(map[string][]byte, n)
	for i := range n {
		name := fmt.Sprintf("host%04d.example.net", i)
		key := []byte(fmt.Sprintf("key-of-%s-0123456789abcdef", name))
		m[name] = key
		h.names = append(h.names, name)
		h.keyOf = append(h.keyOf, key)
		h.signers = append(h.signers, NewSigner(key))
	}
	h.keys = KeysFrom(m, nil)
	return h
}

// BenchmarkVerifyAndApply measures the server's work for one heartbeat
// without the socket: decode, MAC check, clock and replay checks, tracker
// update and ack signing, round-robin over a pool of 1,000 hosts, on one
// goroutine.
func BenchmarkVerifyAndApply(b *testing.B) {
	benchVerifyAndApply(b, NewTracker(TrackerConfig{}), nil, 0)
}

// benchVerifyAndApply is BenchmarkVerifyAndApply on tracker tr. warm runs
// after a first heartbeat of every host was handled (for instance to claim
// the sessions), then the warm-up is repeated; every is how many
// heartbeats the timed loop handles between calls of each (0: never).
func benchVerifyAndApply(b *testing.B, tr *Tracker, warm func(), every int) {
	hosts := newBenchHosts(1000)
	srv := newServer(ServerConfig{Keys: hosts.keys, Tracker: tr})
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	const chunk = 4096
	pkts := make([][]byte, chunk)
	for i := range pkts {
		pkts[i] = make([]byte, 0, MaxPacketSize)
	}
	seqs := make([]uint64, len(hosts.names))
	out := make([]byte, 0, AckSize)
	next := 0
	fill := func(n int) {
		now := time.Now().UnixNano()
		for i := range n {
			h := next % len(hosts.names)
			next++
			seqs[h]++
			p := Packet{Session: uint64(h), Seq: seqs[h], SentNanos: now, IntervalMS: 5000, RTTMicros: 150, Host: []byte(hosts.names[h])}
			pkts[i], _ = hosts.signers[h].AppendHeartbeat(pkts[i][:0], &p)
		}
	}
	// Warm up so that every host has its key cached and state created.
	fill(len(hosts.names))
	for i := range hosts.names {
		srv.handle(pkts[i], from, i%2, out[:0], time.Now(), &srv.ctrs[0])
	}
	if warm != nil {
		warm()
		fill(len(hosts.names))
		for i := range hosts.names {
			if _, ok := srv.handle(pkts[i], from, i%2, out[:0], time.Now(), &srv.ctrs[0]); !ok {
				b.Fatalf("dropped after the warm-up: %+v", srv.Stats())
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	since := 0
	for done := 0; done < b.N; {
		n := min(chunk, b.N-done)
		if every > 0 {
			n = min(n, every-since)
		}
		b.StopTimer()
		fill(n)
		b.StartTimer()
		now := time.Now()
		for i := range n {
			if _, ok := srv.handle(pkts[i], from, i%2, out[:0], now, &srv.ctrs[0]); !ok {
				b.Fatalf("dropped: %+v", srv.Stats())
			}
		}
		done += n
		if since += n; every > 0 && since == every {
			since = 0
			warm()
		}
	}
}

// BenchmarkLoadLoopback measures verified and acked heartbeats per second
// through real UDP sockets on loopback: 1,000 simulated agents, each sending
// over IPv4 and IPv6 (or IPv4 only), multiplexed over two sockets per family
// that each keep a bounded number of heartbeats in flight.
// The load generator runs on the same machine as the server, so the figure
// is a lower bound for the server alone.
func BenchmarkLoadLoopback(b *testing.B) {
	for _, bc := range []struct {
		name    string
		readers int
		ipv6    bool
		batch   int
	}{
		{"both_families", 0, true, 0},
		// One datagram per system call, as before recvmmsg/sendmmsg (and
		// as on platforms without them).
		{"both_families/batch=1", 0, true, 1},
		// Two readers per socket: no faster here, and they can reorder
		// a connection's heartbeats (the occasional replay drop).
		{"both_families/readers=2", 2, true, 0},
		{"ipv4_only", 0, false, 0},
		{"ipv4_only/batch=1", 0, false, 1},
	} {
		b.Run(bc.name, func(b *testing.B) { benchLoad(b, bc.readers, bc.ipv6, bc.batch) })
	}
}

// processCPU is the process's user+system CPU so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchLoad(b *testing.B, readers int, ipv6 bool, batch int) {
	const (
		agents        = 1000
		socketsPerFam = 2
		inFlight      = 64
		stallTimeout  = 100 * time.Millisecond
	)
	hosts := newBenchHosts(agents)
	cfg := ServerConfig{Addr4: "127.0.0.1:0", Keys: hosts.keys, Tracker: NewTracker(TrackerConfig{}), Readers: readers, ReadBatch: batch}
	fams := []Family{IPv4}
	if ipv6 {
		if ok, why := haveIPv6(b); !ok {
			b.Skip(why)
		}
		cfg.Addr6 = "[::1]:0"
		fams = append(fams, IPv6)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan struct{})
	go func() { srv.Serve(context.Background()); close(served) }()
	defer func() { srv.Close(); <-served }()

	var conns []*net.UDPConn
	for _, f := range fams {
		network := map[Family]string{IPv4: "udp4", IPv6: "udp6"}[f]
		for range socketsPerFam {
			c, err := net.DialUDP(network, nil, net.UDPAddrFromAddrPort(srv.Addr(f)))
			if err != nil {
				b.Fatal(err)
			}
			c.SetReadBuffer(socketBuffer)
			conns = append(conns, c)
		}
	}

	var acked, stalls atomic.Int64
	target := int64(b.N)
	done := make(chan struct{})
	var doneOnce sync.Once
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	cpu0 := processCPU()
	for ci, conn := range conns {
		// Socket ci carries the agents h with h % socketsPerFam == ci %
		// socketsPerFam, over its family.
		var mine []int
		for h := ci % socketsPerFam; h < agents; h += socketsPerFam {
			mine = append(mine, h)
		}
		tokens := make(chan struct{}, inFlight)
		for range inFlight {
			tokens <- struct{}{}
		}
		// Receiver: verify every ack with the key of the agent it answers
		// (the session id is the agent's index) and free a window slot.
		wg.Go(func() {
			verifiers := make(map[uint64]*Signer, len(mine))
			for _, h := range mine {
				verifiers[uint64(h)] = NewSigner(hosts.keyOf[h])
			}
			buf := make([]byte, MaxPacketSize+1)
			var p Packet
			for {
				n, err := conn.Read(buf)
				if err != nil {
					return
				}
				if Decode(buf[:n], &p) != nil || p.Type != TypeAck {
					b.Error("bad ack")
					continue
				}
				if v := verifiers[p.Session]; v == nil || !v.Verify(buf[:n]) {
					b.Error("ack does not verify")
					continue
				}
				if acked.Add(1) == target {
					doneOnce.Do(func() { close(done) })
				}
				select {
				case tokens <- struct{}{}:
				default:
				}
			}
		})
		// Sender: one heartbeat per free window slot, round-robin over its
		// agents, each with its own increasing sequence number.
		wg.Go(func() {
			signers := make([]*Signer, len(mine))
			seqs := make([]uint64, len(mine))
			for i, h := range mine {
				signers[i] = NewSigner(hosts.keyOf[h])
			}
			buf := make([]byte, 0, MaxPacketSize)
			timer := time.NewTimer(stallTimeout)
			for i := 0; ; i = (i + 1) % len(mine) {
				select {
				case <-done:
					return
				case <-tokens:
					timer.Reset(stallTimeout)
				case <-timer.C:
					// The window is stuck: datagrams were lost to full
					// socket buffers. Count it and refill the window.
					stalls.Add(1)
					for range inFlight {
						select {
						case tokens <- struct{}{}:
						default:
						}
					}
					timer.Reset(stallTimeout)
					continue
				}
				h := mine[i]
				seqs[i]++
				p := Packet{Session: uint64(h), Seq: seqs[i], SentNanos: time.Now().UnixNano(), IntervalMS: 5000, RTTMicros: 150, Host: []byte(hosts.names[h])}
				buf, _ = signers[i].AppendHeartbeat(buf[:0], &p)
				if _, err := conn.Write(buf); err != nil {
					select {
					case <-done: // the sockets are being closed
					default:
						b.Error(err)
					}
					return
				}
			}
		})
	}
	<-done
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	st := srv.Stats()
	var dropped uint64
	for _, n := range st.Dropped {
		dropped += n
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "hb/s")
	// The whole process: server and load generator (whose share does not
	// change with the server's batching).
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/hb")
	if dropped > 0 {
		b.Logf("N=%d dropped %v", b.N, st.Dropped)
	}
	b.ReportMetric(float64(dropped), "drops")
	b.ReportMetric(float64(stalls.Load()), "stalls")
}
