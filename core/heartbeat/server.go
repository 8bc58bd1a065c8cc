package heartbeat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/ratelimit"
)

// Server defaults.
const (
	// DefaultMaxClockSkew is how far a heartbeat's send time may be from the
	// server's clock, either way, before it is dropped as stale. It also
	// bounds how long a captured heartbeat could be replayed to a server
	// that restarted and so forgot the sequence numbers it had seen.
	DefaultMaxClockSkew = 5 * time.Minute
	// DefaultReaders is the number of goroutines reading each socket. One
	// keeps the heartbeats of a connection in order (a second reader of the
	// same socket can overtake the first, turning the overtaken heartbeat
	// into a replay drop) and was also the faster setting on loopback.
	DefaultReaders = 1

	// RefusalLogEvery is how often at most a refused heartbeat from one
	// source address is logged; RefusalLogSources bounds how many source
	// addresses are tracked for that (beyond it, the untracked ones share
	// one line per RefusalLogEvery).
	RefusalLogEvery   = time.Minute
	RefusalLogSources = 4096

	socketBuffer = 4 << 20
	keyShards    = 16
)

// KeyFunc returns the key of host, whether the host is dynamic (the key was
// derived from the enroll key with DeriveHostKey because the host is not
// configured), and false if the host is unknown. The Server calls it the
// first time it sees a host and again after InvalidateKeys; it must be safe
// for concurrent use. The Server keeps its own copy of the key.
type KeyFunc func(host string) (key []byte, dynamic bool, ok bool)

// KeysFrom returns a KeyFunc over a fixed set of host keys (watchhosts) and an
// optional enroll key: a configured host gets its own key (dynamic false), any
// other valid host name gets DeriveHostKey(enrollKey, host) (dynamic true)
// when enrollKey is not empty, and is unknown otherwise. The maps and keys
// are copied. On a configuration reload, build a new one and pass it to
// Server.SetKeys.
func KeysFrom(hosts map[string][]byte, enrollKey []byte) KeyFunc {
	keys := make(map[string][]byte, len(hosts))
	for h, k := range hosts {
		keys[h] = bytes.Clone(k)
	}
	enroll := bytes.Clone(enrollKey)
	return func(host string) ([]byte, bool, bool) {
		if k, ok := keys[host]; ok {
			return k, false, true
		}
		if len(enroll) == 0 || !ValidHost(host) {
			return nil, false, false
		}
		return DeriveHostKey(enroll, host), true, true
	}
}

// DropReason says why the server dropped a datagram without answering.
type DropReason string

// Drop reasons, in the order the checks run. Everything before DropStale is
// decided before any state is looked at; DropReplay is the only check that
// reads connection state, and it changes none.
const (
	// DropOversized: longer than MaxPacketSize.
	DropOversized DropReason = "oversized"
	// DropShort: shorter than its header says it is.
	DropShort DropReason = "short"
	// DropBadVersion: a protocol version this server does not speak.
	DropBadVersion DropReason = "bad_version"
	// DropMalformed: wrong magic, unknown type or flags, an ack sent to the
	// server, a bad host name or interval, or trailing bytes.
	DropMalformed DropReason = "malformed"
	// DropUnknownHost: the KeyFunc does not know the host.
	DropUnknownHost DropReason = "unknown_host"
	// DropBadMAC: the tag does not match the host's key.
	DropBadMAC DropReason = "bad_mac"
	// DropStale: the send time is more than the maximum clock skew away
	// from the server's clock.
	DropStale DropReason = "stale"
	// DropReplay: the sequence number is not above the last one accepted for
	// the agent session and family, or the session is older than the
	// current one; or, with shared liveness (Tracker.Share), the session
	// is another daemon's, or the number was accepted by another daemon.
	DropReplay DropReason = "replay"
	// DropUnclaimed: with shared liveness, the agent session is not yet
	// claimed by this daemon in the shared store (the claim is being
	// asked for: the first heartbeat of a session is refused).
	DropUnclaimed DropReason = "unclaimed"
)

var dropReasons = [...]DropReason{
	DropOversized, DropShort, DropBadVersion, DropMalformed,
	DropUnknownHost, DropBadMAC, DropStale, DropReplay, DropUnclaimed,
}

const (
	dropOversized = iota
	dropShort
	dropBadVersion
	dropMalformed
	dropUnknownHost
	dropBadMAC
	dropStale
	dropReplay
	dropUnclaimed
	numDropReasons
)

// DropReasons returns every drop reason, for exporting all counters even
// while they are zero.
func DropReasons() []DropReason { return dropReasons[:] }

// Stats are the server's counters since it was created. Received equals
// Accepted plus the sum of Dropped; Accepted equals Acked plus AckErrors.
type Stats struct {
	// Received counts datagrams read from either socket.
	Received uint64 `json:"received"`
	// Accepted counts heartbeats that passed every check and updated the
	// tracker.
	Accepted uint64 `json:"accepted"`
	// Acked counts acks written back.
	Acked uint64 `json:"acked"`
	// AckErrors counts acks the socket refused to send.
	AckErrors uint64 `json:"ack_errors"`
	// Dropped counts datagrams dropped without an answer, by reason; every
	// reason is present.
	Dropped map[DropReason]uint64 `json:"dropped"`
}

// ServerConfig configures a Server. Keys and Tracker are required, and at
// least one of Addr4 and Addr6.
type ServerConfig struct {
	// Addr4 is the IPv4 listen address, e.g. "0.0.0.0:50003"; "" disables
	// IPv4.
	Addr4 string
	// Addr6 is the IPv6 listen address, e.g. "[::]:50003"; "" disables
	// IPv6. The socket is IPv6-only, so it can share the port with Addr4.
	Addr6 string
	// Keys looks up host keys.
	Keys KeyFunc
	// Tracker receives every accepted heartbeat.
	Tracker *Tracker
	// MaxClockSkew overrides DefaultMaxClockSkew when > 0.
	MaxClockSkew time.Duration
	// Readers overrides DefaultReaders when > 0.
	Readers int
	// ReadBatch overrides DefaultReadBatch when > 0: the datagrams read,
	// and acks written, per system call. 1 reads one at a time, as on
	// platforms without recvmmsg.
	ReadBatch int
	// Logger receives socket errors and, at warn, heartbeats refused for
	// an unknown host, a bad signature or clock skew: at most one line per
	// source address per RefusalLogEvery. Every other drop is only
	// counted, so a flood cannot fill the log. Nil discards them.
	Logger hclog.Logger
}

// ErrServerClosed is returned by Serve when the server was already closed
// or is already serving.
var ErrServerClosed = errors.New("heartbeat: server closed")

// Server receives heartbeats over UDP, verifies them, feeds the Tracker and
// answers with signed acks. Create it with NewServer, run it with Serve.
type Server struct {
	keys    atomic.Pointer[KeyFunc]
	tracker *Tracker
	skew    time.Duration
	readers int
	batch   int // datagrams per read call (ServerConfig.ReadBatch)
	log     hclog.Logger
	refusal *ratelimit.Limiter[netip.Addr] // log lines of refused heartbeats, per source

	conns [2]*net.UDPConn // by family index; nil when disabled

	keyGen    atomic.Uint64
	keySeed   maphash.Seed
	keyShards [keyShards]keyShard

	ctrs []counters // one per reader goroutine

	serving   atomic.Bool
	closeOnce sync.Once
	closed    chan struct{}
}

type keyShard struct {
	mu   sync.RWMutex
	keys map[string]*keyEntry
}

// keyEntry caches one host's key and a reusable HMAC state. mu guards
// everything but name, and serializes use of the signer.
type keyEntry struct {
	mu      sync.Mutex
	name    string
	key     []byte
	dynamic bool
	gen     uint64
	signer  *Signer
}

// counters belong to one reader goroutine; Stats sums them. The padding
// keeps two readers' counters off one cache line.
type counters struct {
	received, accepted, acked, ackErrors atomic.Uint64
	reads                                atomic.Uint64 // read system calls that returned datagrams
	dropped                              [numDropReasons]atomic.Uint64
	_                                    [64]byte
}

// NewServer validates cfg and binds the sockets. The server does not read
// before Serve is called.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Keys == nil || cfg.Tracker == nil {
		return nil, errors.New("heartbeat: ServerConfig needs Keys and Tracker")
	}
	if cfg.Addr4 == "" && cfg.Addr6 == "" {
		return nil, errors.New("heartbeat: ServerConfig needs Addr4 or Addr6")
	}
	s := newServer(cfg)
	for i, addr := range [2]string{cfg.Addr4, cfg.Addr6} {
		if addr == "" {
			continue
		}
		network := "udp4"
		if i == 1 {
			network = "udp6"
		}
		ua, err := net.ResolveUDPAddr(network, addr)
		if err == nil {
			s.conns[i], err = net.ListenUDP(network, ua)
		}
		if err != nil {
			s.closeConns()
			return nil, fmt.Errorf("heartbeat: listen %s %s: %w", network, addr, err)
		}
		// Best effort: a larger buffer absorbs bursts, such as every agent
		// sending at once after a network outage.
		_ = s.conns[i].SetReadBuffer(socketBuffer)
		_ = s.conns[i].SetWriteBuffer(socketBuffer)
	}
	return s, nil
}

// newServer returns a Server without sockets: everything but the I/O.
func newServer(cfg ServerConfig) *Server {
	s := &Server{
		tracker: cfg.Tracker,
		skew:    cfg.MaxClockSkew,
		readers: cfg.Readers,
		batch:   cfg.ReadBatch,
		log:     cfg.Logger,
		keySeed: maphash.MakeSeed(),
		closed:  make(chan struct{}),
		refusal: ratelimit.New[netip.Addr](RefusalLogEvery, RefusalLogSources),
	}
	s.keys.Store(&cfg.Keys)
	if s.skew <= 0 {
		s.skew = DefaultMaxClockSkew
	}
	if s.readers <= 0 {
		s.readers = DefaultReaders
	}
	if s.batch <= 0 {
		s.batch = DefaultReadBatch
	}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	for i := range s.keyShards {
		s.keyShards[i].keys = make(map[string]*keyEntry)
	}
	s.ctrs = make([]counters, 2*s.readers)
	return s
}

// Addr returns the bound address of family f's socket, or the zero AddrPort
// when that family is disabled. With port 0 in the configuration it tells
// the port the system chose.
func (s *Server) Addr(f Family) netip.AddrPort {
	i, ok := familyIndex(f)
	if !ok || s.conns[i] == nil {
		return netip.AddrPort{}
	}
	return s.conns[i].LocalAddr().(*net.UDPAddr).AddrPort()
}

// Serve reads and answers heartbeats until ctx is done or Close is called,
// then closes the sockets and returns nil after every reader has stopped.
// It may be called once.
func (s *Server) Serve(ctx context.Context) error {
	if !s.serving.CompareAndSwap(false, true) {
		return ErrServerClosed
	}
	select {
	case <-s.closed:
		return ErrServerClosed
	default:
	}
	var wg sync.WaitGroup
	for i, c := range s.conns {
		if c == nil {
			continue
		}
		for r := 0; r < s.readers; r++ {
			ctr := &s.ctrs[i*s.readers+r]
			wg.Go(func() { s.read(c, i, ctr) })
		}
	}
	select {
	case <-ctx.Done():
	case <-s.closed:
	}
	s.Close()
	wg.Wait()
	return nil
}

// Close closes the sockets, which stops Serve. It is safe to call more than
// once and concurrently with Serve.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.closeConns()
	})
	return nil
}

func (s *Server) closeConns() {
	for _, c := range s.conns {
		if c != nil {
			c.Close()
		}
	}
}

// InvalidateKeys makes the server ask the KeyFunc again for every host
// before it verifies that host's next heartbeat. Call it after a
// configuration reload when the KeyFunc reads the live configuration.
func (s *Server) InvalidateKeys() { s.keyGen.Add(1) }

// SetKeys replaces the KeyFunc, for instance with a new KeysFrom after a
// configuration reload, and invalidates every cached key. A nil keys is
// ignored.
func (s *Server) SetKeys(keys KeyFunc) {
	if keys != nil {
		s.keys.Store(&keys)
		s.InvalidateKeys()
	}
}

func (s *Server) lookupKey(host string) ([]byte, bool, bool) {
	return (*s.keys.Load())(host)
}

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	st := Stats{Dropped: make(map[DropReason]uint64, numDropReasons)}
	for _, r := range dropReasons {
		st.Dropped[r] = 0
	}
	for i := range s.ctrs {
		c := &s.ctrs[i]
		st.Received += c.received.Load()
		st.Accepted += c.accepted.Load()
		st.Acked += c.acked.Load()
		st.AckErrors += c.ackErrors.Load()
		for r := range c.dropped {
			st.Dropped[dropReasons[r]] += c.dropped[r].Load()
		}
	}
	return st
}

// read serves socket c (family fi) until it is closed: in batches where
// the platform allows (readBatched), else one datagram at a time.
func (s *Server) read(c *net.UDPConn, fi int, ctr *counters) {
	if s.batch > 1 {
		if bc := batchOf(c, fi); bc != nil {
			s.readBatched(c, bc, fi, s.batch, ctr)
			return
		}
	}
	s.readOne(c, fi, ctr)
}

// readOne serves socket c one datagram per system call.
func (s *Server) readOne(c *net.UDPConn, fi int, ctr *counters) {
	// One byte more than allowed, so that an oversized datagram shows as
	// such instead of being silently truncated to a valid-looking size.
	buf := make([]byte, MaxPacketSize+1)
	out := make([]byte, 0, AckSize)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("heartbeat read failed", "family", families[fi], "error", err)
			// Whatever it was, do not spin on it.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		ctr.reads.Add(1)
		ack, ok := s.handle(buf[:n], from, fi, out[:0], time.Now(), ctr)
		if !ok {
			continue
		}
		if _, err := c.WriteToUDPAddrPort(ack, from); err != nil {
			ctr.ackErrors.Add(1)
			s.log.Debug("heartbeat ack failed", "family", families[fi], "to", from, "error", err)
			continue
		}
		ctr.acked.Add(1)
	}
}

// handle verifies the datagram b received over family fi from addr, applies
// it to the tracker and appends the signed ack to out. It returns false,
// having counted the reason, when the datagram must be dropped.
func (s *Server) handle(b []byte, from netip.AddrPort, fi int, out []byte, now time.Time, ctr *counters) ([]byte, bool) {
	ctr.received.Add(1)
	var p Packet
	if err := Decode(b, &p); err != nil {
		ctr.dropped[decodeDropReason(err)].Add(1)
		return nil, false
	}
	if p.Type != TypeHeartbeat {
		ctr.dropped[dropMalformed].Add(1)
		return nil, false
	}
	ke, fresh := s.lockedKey(p.Host)
	if ke == nil {
		ctr.dropped[dropUnknownHost].Add(1)
		s.logRefusal(from, fi, p.Host, now, DropUnknownHost, 0)
		return nil, false
	}
	if !ke.signer.Verify(b) {
		ke.mu.Unlock()
		ctr.dropped[dropBadMAC].Add(1)
		s.logRefusal(from, fi, p.Host, now, DropBadMAC, 0)
		return nil, false
	}
	if d := time.Duration(now.UnixNano() - p.SentNanos); d > s.skew || d < -s.skew {
		dynamic := ke.dynamic
		ke.mu.Unlock()
		ctr.dropped[dropStale].Add(1)
		// Verified, so the host exists and its clock is off: the tracker
		// learns the offset and why the host is not heard.
		s.tracker.refuse(p.Host, fi, &p, now, dynamic)
		s.logRefusal(from, fi, p.Host, now, DropStale, -d)
		return nil, false
	}
	// Signing before the tracker decides on a replay wastes one MAC per
	// replayed packet but keeps the key lock out of the tracker's way.
	p.ServerNanos = now.UnixNano()
	out = ke.signer.AppendAck(out, &p)
	dynamic := ke.dynamic
	ke.mu.Unlock()
	if fresh && dynamic {
		// A dynamic host's entry is cached only once it has proven the
		// key, so random names cannot grow the cache.
		s.storeKey(ke)
	}
	if err := s.tracker.observe(p.Host, fi, &p, from, now, dynamic); err != nil {
		if err == errUnclaimed {
			ctr.dropped[dropUnclaimed].Add(1)
		} else {
			ctr.dropped[dropReplay].Add(1)
		}
		return nil, false
	}
	ctr.accepted.Add(1)
	return out, true
}

// logRefusal logs a heartbeat refused for why (DropUnknownHost, DropBadMAC
// or DropStale, with the host's clock offset) at warn, at most once per
// source address per RefusalLogEvery. Nothing is formatted for the lines
// held back, so a flood of forged packets costs a map lookup each.
func (s *Server) logRefusal(from netip.AddrPort, fi int, host []byte, now time.Time, why DropReason, offset time.Duration) {
	d := s.refusal.Allow(from.Addr(), now)
	if !d.OK {
		return
	}
	var reason string
	switch why {
	case DropUnknownHost:
		reason = "unknown host: not in watchhosts, and no enroll_key"
	case DropBadMAC:
		reason = "bad signature: the host's key differs from the daemon's"
	default:
		reason = fmt.Sprintf("%s (allowed ±%s): fix the host's clock (NTP)", skewReason(offset), s.skew)
	}
	args := []any{"reason", reason, "host", string(host), "source", from.Addr().String(), "family", families[fi]}
	if d.Suppressed > 0 {
		args = append(args, "suppressed", d.Suppressed)
	}
	if d.Overflow {
		args = append(args, "note", "refusals from too many sources: untracked sources share one line per minute")
	}
	s.log.Warn("heartbeat refused", args...)
}

func decodeDropReason(err error) int {
	switch err {
	case ErrShort:
		return dropShort
	case ErrOversized:
		return dropOversized
	case ErrBadVersion:
		return dropBadVersion
	default:
		return dropMalformed
	}
}

func (s *Server) keyShard(host []byte) *keyShard {
	return &s.keyShards[maphash.Bytes(s.keySeed, host)%keyShards]
}

// lockedKey returns host's key entry, locked and current, or nil when the
// host is unknown. fresh is true when the entry was just created and not
// yet cached, which is the case for dynamic hosts until they prove the key.
func (s *Server) lockedKey(host []byte) (e *keyEntry, fresh bool) {
	gen := s.keyGen.Load()
	sh := s.keyShard(host)
	sh.mu.RLock()
	e = sh.keys[string(host)]
	sh.mu.RUnlock()
	if e != nil {
		e.mu.Lock()
		if e.gen == gen {
			return e, false
		}
		key, dynamic, ok := s.lookupKey(e.name)
		if !ok {
			e.mu.Unlock()
			sh.mu.Lock()
			if sh.keys[e.name] == e {
				delete(sh.keys, e.name)
			}
			sh.mu.Unlock()
			return nil, false
		}
		if !bytes.Equal(key, e.key) {
			e.key = bytes.Clone(key)
			e.signer = NewSigner(e.key)
		}
		e.dynamic, e.gen = dynamic, gen
		return e, false
	}
	name := string(host)
	key, dynamic, ok := s.lookupKey(name)
	if !ok {
		return nil, false
	}
	e = &keyEntry{name: name, key: bytes.Clone(key), dynamic: dynamic, gen: gen}
	e.signer = NewSigner(e.key)
	if !dynamic {
		s.storeKey(e)
	}
	e.mu.Lock()
	return e, true
}

func (s *Server) storeKey(e *keyEntry) {
	sh := &s.keyShards[maphash.String(s.keySeed, e.name)%keyShards]
	sh.mu.Lock()
	if _, ok := sh.keys[e.name]; !ok {
		sh.keys[e.name] = e
	}
	sh.mu.Unlock()
}
