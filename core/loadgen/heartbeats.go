package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hbdmon/hbd/core/heartbeat"
)

// Heartbeat load: every host beats over each family the daemon listens
// on. The hosts of a family are spread over a few UDP sockets; each socket
// has one sender goroutine, which owns its hosts' sequence numbers, and one
// receiver goroutine, which verifies every ack with the key of the host it
// answers (found by the session id) and opens a window slot.

// hbInterval is the interval the simulated agents announce (hbc's default).
const hbInterval = 5 * time.Second

// hbStallTimeout refills a socket's window when no ack came back for this
// long (datagrams lost to full buffers).
const hbStallTimeout = 100 * time.Millisecond

type hbSock struct {
	family string
	conn   *net.UDPConn
	hosts  []*fleetHost
	seqs   []uint64
	sign   []*heartbeat.Signer // sender's, per host
	verify map[uint64]*heartbeat.Signer
	tokens chan struct{}

	sent, acked, badAcks, stalls atomic.Uint64
	rtt                          atomic.Pointer[hist]
}

// hbLoad is the heartbeat side of the simulated fleet.
type hbLoad struct {
	socks  []*hbSock
	window int
	wg     sync.WaitGroup
}

// newHBLoad dials perFamily sockets to each address (addr4, addr6; empty:
// that family is not used) and starts their receivers.
func newHBLoad(hosts []fleetHost, addr4, addr6 string, perFamily, window int) (*hbLoad, error) {
	l := &hbLoad{window: window}
	for _, fa := range []struct{ fam, network, addr string }{{"ipv4", "udp4", addr4}, {"ipv6", "udp6", addr6}} {
		if fa.addr == "" {
			continue
		}
		ra, err := net.ResolveUDPAddr(fa.network, fa.addr)
		if err != nil {
			l.close()
			return nil, fmt.Errorf("heartbeat address %s: %w", fa.addr, err)
		}
		for s := range perFamily {
			c, err := net.DialUDP(fa.network, nil, ra)
			if err != nil {
				l.close()
				return nil, fmt.Errorf("dial %s %s: %w", fa.network, fa.addr, err)
			}
			c.SetReadBuffer(4 << 20)
			c.SetWriteBuffer(4 << 20)
			k := &hbSock{family: fa.fam, conn: c, verify: map[uint64]*heartbeat.Signer{}, tokens: make(chan struct{}, window)}
			k.rtt.Store(&hist{})
			for i := s; i < len(hosts); i += perFamily {
				h := &hosts[i]
				k.hosts = append(k.hosts, h)
				k.seqs = append(k.seqs, 0)
				k.sign = append(k.sign, heartbeat.NewSigner(h.Key))
				k.verify[h.Session] = heartbeat.NewSigner(h.Key)
			}
			l.socks = append(l.socks, k)
			l.wg.Go(k.receive)
		}
	}
	return l, nil
}

func (l *hbLoad) close() {
	for _, k := range l.socks {
		k.conn.Close()
	}
	l.wg.Wait()
}

func (k *hbSock) receive() {
	buf := make([]byte, heartbeat.MaxPacketSize+1)
	var p heartbeat.Packet
	for {
		n, err := k.conn.Read(buf)
		if err != nil {
			if isRefused(err) {
				continue // an ICMP unreachable while the daemon was away
			}
			return
		}
		now := time.Now()
		if heartbeat.Decode(buf[:n], &p) != nil || p.Type != heartbeat.TypeAck {
			k.badAcks.Add(1)
			continue
		}
		if v := k.verify[p.Session]; v == nil || !v.Verify(buf[:n]) {
			k.badAcks.Add(1)
			continue
		}
		k.acked.Add(1)
		k.rtt.Load().Record(now.Sub(time.Unix(0, p.SentNanos)))
		select {
		case k.tokens <- struct{}{}:
		default:
		}
	}
}

// run sends heartbeats round-robin over the socket's hosts until ctx ends:
// at rate per second (0: as fast as the window of unacknowledged
// heartbeats allows), never more than window unacknowledged.
func (k *hbSock) run(ctx context.Context, rate float64, window int, once bool) {
	for len(k.tokens) < window {
		k.tokens <- struct{}{}
	}
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	buf := make([]byte, 0, heartbeat.MaxPacketSize)
	timer := time.NewTimer(hbStallTimeout)
	defer timer.Stop()
	next := time.Now()
	for i := 0; ; i++ {
		if i == len(k.hosts) {
			if once {
				return
			}
			i = 0
		}
		if interval > 0 {
			next = next.Add(interval)
			if d := time.Until(next); d > time.Millisecond {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			} else if d < -time.Second {
				next = time.Now() // far behind: do not burst to catch up
			}
		}
	wait:
		select {
		case <-ctx.Done():
			return
		case <-k.tokens:
			timer.Reset(hbStallTimeout)
		case <-timer.C:
			k.stalls.Add(1)
			for range window {
				select {
				case k.tokens <- struct{}{}:
				default:
				}
			}
			timer.Reset(hbStallTimeout)
			goto wait
		}
		h := k.hosts[i]
		k.seqs[i]++
		p := heartbeat.Packet{Flags: heartbeat.FlagEnrolled, Session: h.Session, Seq: k.seqs[i],
			SentNanos: time.Now().UnixNano(), IntervalMS: uint32(hbInterval / time.Millisecond), Host: []byte(h.Name)}
		buf, _ = k.sign[i].AppendHeartbeat(buf[:0], &p)
		if _, err := k.conn.Write(buf); err != nil {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		k.sent.Add(1)
	}
}

// HBFigures are the heartbeat figures of a phase.
type HBFigures struct {
	Sockets int `json:"sockets"`
	// Sent and Acked count heartbeats sent and acks received that verify
	// with the host's key; Missing is Sent - Acked (acks still missing
	// 200 ms after the last send: lost datagrams or slow answers).
	Sent    uint64  `json:"sent"`
	Acked   uint64  `json:"acked"`
	Missing int64   `json:"missing_acks"`
	BadAcks uint64  `json:"bad_acks"`
	Stalls  uint64  `json:"window_stalls"`
	PerSec  float64 `json:"acked_per_s"`
	// ByFamily is acked per second by address family.
	ByFamily map[string]float64 `json:"acked_per_s_by_family"`
	RTT      Percentiles        `json:"rtt"`
}

type hbMark struct{ sent, acked, bad, stalls []uint64 }

func (l *hbLoad) mark() hbMark {
	var m hbMark
	for _, k := range l.socks {
		m.sent = append(m.sent, k.sent.Load())
		m.acked = append(m.acked, k.acked.Load())
		m.bad = append(m.bad, k.badAcks.Load())
		m.stalls = append(m.stalls, k.stalls.Load())
		k.rtt.Store(&hist{})
	}
	return m
}

// figures are the counts since m, over secs seconds.
func (l *hbLoad) figures(m hbMark, secs float64) HBFigures {
	f := HBFigures{Sockets: len(l.socks), ByFamily: map[string]float64{}}
	var rtt hist
	for i, k := range l.socks {
		a := k.acked.Load() - m.acked[i]
		f.Sent += k.sent.Load() - m.sent[i]
		f.Acked += a
		f.BadAcks += k.badAcks.Load() - m.bad[i]
		f.Stalls += k.stalls.Load() - m.stalls[i]
		f.ByFamily[k.family] = round3(f.ByFamily[k.family] + float64(a)/secs)
		rtt.Merge(k.rtt.Load())
	}
	f.Missing = int64(f.Sent) - int64(f.Acked)
	f.PerSec = round3(float64(f.Acked) / secs)
	f.RTT = rtt.Percentiles()
	return f
}

// start runs every socket's sender until ctx ends; rate is the total
// heartbeats per second (0: as fast as the windows allow). once sends one
// heartbeat per host and family, then returns. The returned function
// waits for the senders.
func (l *hbLoad) start(ctx context.Context, rate float64, once bool) func() {
	var wg sync.WaitGroup
	for _, k := range l.socks {
		r := 0.0
		if rate > 0 {
			r = rate / float64(len(l.socks))
		}
		wg.Go(func() { k.run(ctx, r, l.window, once) })
	}
	return wg.Wait
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
