package heartbeat

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Client defaults.
const (
	// DefaultInterval is the agent's sending interval when
	// ClientConfig.Interval is 0.
	DefaultInterval = 5 * time.Second
	// unackedBeforeWarn intervals without an ack make a family unreachable
	// in the log; unackedBeforeRedial make the client open a new socket,
	// re-resolving the server's name and picking a current source address.
	unackedBeforeWarn   = 3
	unackedBeforeRedial = 10
	// AckWarnEvery is how often at most the client warns, per family, that
	// no acks arrive. The daemon drops a heartbeat it refuses (unknown
	// host, wrong key, clock skew) without an answer, so this warning is
	// all the host gets to see of it.
	AckWarnEvery = 5 * time.Minute
	// pendingSlots is how many recent heartbeats per family the client
	// remembers to match acks against.
	pendingSlots = 16
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Host is the name the agent reports, as configured in the daemon's
	// watchhosts (see ValidHost).
	Host string
	// Key is the host's key. Exactly one of Key and EnrollKey is required.
	Key []byte
	// EnrollKey is the daemon's enroll key. The client signs with
	// DeriveHostKey(EnrollKey, Host) and sets FlagEnrolled; the daemon
	// registers the host as dynamic on its first heartbeat.
	EnrollKey []byte
	// Interval is the sending interval, a whole number of milliseconds
	// between MinInterval and MaxInterval; DefaultInterval when 0.
	Interval time.Duration
	// Addr4 is the server's "host:port" reached over IPv4; "" disables
	// IPv4.
	Addr4 string
	// Addr6 is the server's "host:port" reached over IPv6; "" disables
	// IPv6.
	Addr6 string
	// Logger receives reachability changes and socket errors; nil discards
	// them.
	Logger hclog.Logger
	// Now is the clock the send time of each heartbeat is read from;
	// time.Now when nil. Tests shift it to play a host whose clock is
	// wrong. Round trips are measured with time.Now regardless.
	Now func() time.Time
}

// FamilyStatus is what the client knows about one address family.
type FamilyStatus struct {
	// Family is IPv4 or IPv6.
	Family Family
	// Enabled is false when the configuration has no address for Family.
	Enabled bool
	// Paused is true while Pause holds the family.
	Paused bool
	// Sent counts heartbeats written to the socket.
	Sent uint64
	// Acked counts acks that verified and matched a heartbeat.
	Acked uint64
	// BadAcks counts datagrams received on the socket that were not a
	// valid, fresh ack for this client's session.
	BadAcks uint64
	// LastSent is when the last heartbeat was sent.
	LastSent time.Time
	// LastAck is when the last valid ack arrived.
	LastAck time.Time
	// LastRTT is the round-trip time measured with the last valid ack.
	LastRTT time.Duration
	// LastError is the last error of the socket; nil after a successful
	// send.
	LastError error
}

// Client is the agent side: it sends heartbeats over each configured
// address family independently (own socket and goroutines, so one family
// never blocks the other), verifies acks and reports the measured RTT in the
// next heartbeat. Status and Pause are safe for concurrent use with Run.
type Client struct {
	now      func() time.Time
	host     []byte
	key      []byte
	flags    Flags
	interval time.Duration
	session  uint64
	log      hclog.Logger
	fams     [2]*clientFamily // by family index; nil when disabled
	running  atomic.Bool
}

type clientFamily struct {
	family  Family
	network string
	addr    string
	paused  atomic.Bool

	mu         sync.Mutex
	st         FamilyStatus
	pendingRTT time.Duration // measured since the last heartbeat, reported once
	reachable  bool
	started    time.Time // when the family started sending
	lastWarn   time.Time // when the last "no acks" warning was logged
	sentAt     [pendingSlots]pendingHeartbeat
}

type pendingHeartbeat struct {
	seq   uint64
	at    time.Time
	acked bool
}

// NewClient validates cfg and returns a Client with a new random session
// id. Start it with Run.
func NewClient(cfg ClientConfig) (*Client, error) {
	if !ValidHost(cfg.Host) {
		return nil, fmt.Errorf("heartbeat: invalid host name %q: want 1 to %d characters of A-Z a-z 0-9 . _ -", cfg.Host, MaxHostLen)
	}
	c := &Client{host: []byte(cfg.Host), interval: cfg.Interval, log: cfg.Logger, now: cfg.Now}
	if c.now == nil {
		c.now = time.Now
	}
	switch {
	case len(cfg.Key) > 0 && len(cfg.EnrollKey) > 0:
		return nil, errors.New("heartbeat: set either Key or EnrollKey, not both")
	case len(cfg.Key) > 0:
		c.key = append([]byte(nil), cfg.Key...)
	case len(cfg.EnrollKey) > 0:
		c.key = DeriveHostKey(cfg.EnrollKey, cfg.Host)
		c.flags = FlagEnrolled
	default:
		return nil, errors.New("heartbeat: Key or EnrollKey is required")
	}
	if c.interval == 0 {
		c.interval = DefaultInterval
	}
	if c.interval%time.Millisecond != 0 || !validInterval(uint32(c.interval/time.Millisecond)) {
		return nil, fmt.Errorf("heartbeat: interval %v: want whole milliseconds between %v and %v", c.interval, MinInterval, MaxInterval)
	}
	if cfg.Addr4 == "" && cfg.Addr6 == "" {
		return nil, errors.New("heartbeat: Addr4 or Addr6 is required")
	}
	if c.log == nil {
		c.log = hclog.NewNullLogger()
	}
	for i, addr := range [2]string{cfg.Addr4, cfg.Addr6} {
		if addr == "" {
			continue
		}
		f := &clientFamily{family: families[i], network: "udp4", addr: addr}
		if i == 1 {
			f.network = "udp6"
		}
		f.st = FamilyStatus{Family: f.family, Enabled: true}
		c.fams[i] = f
	}
	var b [8]byte
	rand.Read(b[:])
	c.session = binary.BigEndian.Uint64(b[:])
	return c, nil
}

// Session returns the random id of this agent run.
func (c *Client) Session() uint64 { return c.session }

// Status returns a copy of what the client knows about family f.
func (c *Client) Status(f Family) FamilyStatus {
	i, ok := familyIndex(f)
	if !ok || c.fams[i] == nil {
		return FamilyStatus{Family: f}
	}
	fam := c.fams[i]
	fam.mu.Lock()
	defer fam.mu.Unlock()
	st := fam.st
	st.Paused = fam.paused.Load()
	return st
}

// Pause stops (paused true) or resumes sending over family f. While paused
// the client still counts sequence numbers, as if the heartbeats were lost
// on the way; tests use it to cut one family's path.
func (c *Client) Pause(f Family, paused bool) {
	if i, ok := familyIndex(f); ok && c.fams[i] != nil {
		c.fams[i].paused.Store(paused)
	}
}

// Run sends heartbeats until ctx is done, then returns nil. The first
// heartbeat of each family goes out at once. Run may be called once.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("heartbeat: client already ran")
	}
	var wg sync.WaitGroup
	for _, f := range c.fams {
		if f != nil {
			wg.Go(func() { c.runFamily(ctx, f) })
		}
	}
	wg.Wait()
	return nil
}

func (c *Client) runFamily(ctx context.Context, f *clientFamily) {
	signer := NewSigner(c.key)
	buf := make([]byte, 0, HeartbeatMaxSize)
	p := Packet{
		Flags:      c.flags,
		Session:    c.session,
		IntervalMS: uint32(c.interval / time.Millisecond),
		Host:       c.host,
	}
	tick := time.NewTicker(c.interval)
	defer tick.Stop()
	f.mu.Lock()
	f.started = time.Now()
	f.mu.Unlock()
	wait := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
			return true
		}
	}
	for {
		conn, err := dial(f.network, f.addr)
		if err != nil {
			f.setError(c.log, err)
			if !wait() {
				return
			}
			continue
		}
		var wg sync.WaitGroup
		wg.Go(func() { c.receive(conn, f) })
		dialed := time.Now()
		for {
			p.Seq++
			c.send(conn, f, signer, buf, &p)
			if !wait() {
				break
			}
			f.checkAcks(c.log, time.Now(), unackedBeforeWarn*c.interval)
			if !f.paused.Load() && f.unacked(dialed, unackedBeforeRedial*c.interval) {
				c.log.Debug("heartbeat: reopening socket", "family", f.family, "server", f.addr)
				break
			}
		}
		conn.Close()
		wg.Wait()
		if ctx.Err() != nil {
			return
		}
	}
}

func dial(network, addr string) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		return nil, err
	}
	return net.DialUDP(network, nil, ua)
}

// send signs and writes heartbeat p.Seq, carrying the RTT measured since
// the previous one.
func (c *Client) send(conn *net.UDPConn, f *clientFamily, signer *Signer, buf []byte, p *Packet) {
	now := time.Now()
	p.SentNanos = c.now().UnixNano()
	f.mu.Lock()
	p.RTTMicros = rttMicros(f.pendingRTT)
	f.pendingRTT = 0
	f.sentAt[p.Seq%pendingSlots] = pendingHeartbeat{seq: p.Seq, at: now}
	f.mu.Unlock()
	pkt, err := signer.AppendHeartbeat(buf, p)
	if err != nil || f.paused.Load() {
		return // err is impossible: NewClient validated host and interval
	}
	_, err = conn.Write(pkt)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.setErrorLocked(c.log, err)
		return
	}
	f.st.Sent++
	f.st.LastSent = now
	if f.st.LastError != nil {
		c.log.Info("heartbeat: sending again", "family", f.family, "server", f.addr)
		f.st.LastError = nil
	}
}

func rttMicros(d time.Duration) uint32 {
	switch us := d.Microseconds(); {
	case d <= 0:
		return 0
	case us < 1:
		return 1 // 0 means "no measurement"
	case us > 1<<32-1:
		return 1<<32 - 1
	default:
		return uint32(us)
	}
}

// receive reads acks from conn until it is closed.
func (c *Client) receive(conn *net.UDPConn, f *clientFamily) {
	signer := NewSigner(c.key)
	buf := make([]byte, MaxPacketSize+1)
	var p Packet
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A connected UDP socket reports ICMP errors (for instance
			// port unreachable while the daemon restarts) on the next
			// read; they are transient.
			continue
		}
		now := time.Now()
		ok := Decode(buf[:n], &p) == nil && p.Type == TypeAck && p.Session == c.session && signer.Verify(buf[:n])
		f.ack(c.log, ok, p.Seq, now)
	}
}

// ack records a received datagram: a verified ack for seq when valid is
// true, otherwise a bad one.
func (f *clientFamily) ack(log hclog.Logger, valid bool, seq uint64, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	slot := &f.sentAt[seq%pendingSlots]
	if !valid || slot.seq != seq || slot.acked || slot.at.IsZero() {
		f.st.BadAcks++
		return
	}
	slot.acked = true
	rtt := now.Sub(slot.at)
	f.pendingRTT = rtt
	f.st.Acked++
	f.st.LastAck = now
	f.st.LastRTT = rtt
	if !f.reachable {
		f.reachable = true
		f.lastWarn = time.Time{} // a new outage is worth a new warning
		log.Info("heartbeat: server reachable", "family", f.family, "server", f.addr, "rtt", rtt)
	}
}

// unacked reports whether no ack arrived for d, counting from since when
// none arrived at all.
func (f *clientFamily) unacked(since time.Time, d time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	last := f.st.LastAck
	if last.Before(since) {
		last = since
	}
	return time.Since(last) > d
}

// checkAcks warns when no ack arrived for after (since the family started
// sending, when none ever did), at most once per AckWarnEvery until an ack
// arrives again.
func (f *clientFamily) checkAcks(log hclog.Logger, now time.Time, after time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	last := f.st.LastAck
	if last.Before(f.started) {
		last = f.started
	}
	silent := now.Sub(last)
	if silent <= after {
		return
	}
	f.reachable = false
	if !f.lastWarn.IsZero() && now.Sub(f.lastWarn) < AckWarnEvery {
		return
	}
	f.lastWarn = now
	lastAck := "never"
	if !f.st.LastAck.IsZero() {
		lastAck = f.st.LastAck.Format(time.RFC3339)
	}
	log.Warn(fmt.Sprintf("no heartbeat acks from hbd over %s for %s: check the host key, the daemon address and this host's clock",
		f.family, silent.Round(time.Second)), "server", f.addr, "last_ack", lastAck)
}

func (f *clientFamily) setError(log hclog.Logger, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setErrorLocked(log, err)
}

func (f *clientFamily) setErrorLocked(log hclog.Logger, err error) {
	if f.st.LastError == nil || f.st.LastError.Error() != err.Error() {
		log.Warn("heartbeat: send failed", "family", f.family, "server", f.addr, "error", err)
	}
	f.st.LastError = err
}
