// Package ws is hbd's live feed: a WebSocket hub at /hbd that pushes host
// states, plugin samples, alert changes and journal messages to the web UI
// and other clients.
//
// The daemon serves the same Hub on ws_port (see PortHandler) and
// same-origin on the HTTP port (mount the Hub itself at Path). Every client
// is authenticated before the upgrade and receives only messages about
// hosts it may see; the check is repeated for every message, so access
// changes apply at once. Publishing never blocks: each client has a bounded
// queue in which a newer state of a host (or sample of a host's plugin)
// replaces a queued older one, and a client whose queue still fills, or
// that does not take a frame within WriteTimeout, is dropped and counted.
//
// A client that asks for it (?batch=1) gets multi-message frames instead:
// a JSON array of the messages published since its last frame, at most one
// frame per FlushInterval while the feed is busy. The hub builds each
// array once per flush and shares it between the clients that get the
// same messages (see batch.go).
package ws

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/store"
)

// Path is where the feed is served, on ws_port and on the HTTP port.
const Path = "/hbd"

// Message types of the feed.
const (
	TypeHost    = "host"
	TypePlugin  = "plugin"
	TypeAlert   = "alert"
	TypeMessage = "message"
)

// Defaults for Options left zero.
const (
	DefaultMaxClients    = 5000
	DefaultMaxPerUser    = 16
	DefaultSendQueue     = 256
	DefaultPingInterval  = 30 * time.Second
	DefaultWriteTimeout  = time.Second
	DefaultPongTimeout   = 10 * time.Second
	DefaultSendBuffer    = 64 << 10
	DefaultReadLimit     = 512
	DefaultReauth        = time.Minute
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultMaxBatch      = 1000
)

// Reasons a client is disconnected; they are the causes of its context.
var (
	ErrSlowClient   = errors.New("client fell behind")
	ErrSessionEnded = errors.New("session ended")
	ErrShutdown     = errors.New("server shutting down")
	errPeerGone     = errors.New("connection closed by peer")
	errPingTimeout  = errors.New("ping timeout")
	errWriteTimeout = errors.New("frame not taken within the write timeout")
	errWriteFailed  = errors.New("write failed")
)

// dropReasons label hbd_ws_dropped_total: why clients were dropped for
// falling behind, by the cause of their context.
var dropReasons = [...]struct {
	label string
	cause error
}{
	{"queue_full", ErrSlowClient},
	{"write_timeout", errWriteTimeout},
	{"ping_timeout", errPingTimeout},
}

// Message is one frame of the feed: {"type": ..., "data": {...}}.
type Message struct {
	Type string `json:"type"`
	Data any    `json:"data"`
}

// PluginData is the data of a "plugin" message, the reference's shape.
type PluginData struct {
	Host      string         `json:"host"`
	Plugin    string         `json:"plugin"`
	Data      map[string]any `json:"data"`
	Timestamp float64        `json:"timestamp"`
}

// Policy is what the hub asks of the access policy (*access.Policy):
// which clients get a message about a host. It is called for every
// message and client, so it must be cheap and must not block.
type Policy interface {
	// CanSee reports whether p may read host's data.
	CanSee(p access.Principal, host string) bool
	// IsAdmin reports whether p may do everything; daemon-wide messages
	// go to administrators only.
	IsAdmin(p access.Principal) bool
}

// Options configure a Hub. Authenticate and Policy are required.
type Options struct {
	// Authenticate returns the caller of an upgrade request (session
	// cookie, bearer token...). It is also re-run every Reauth on a copy
	// of the request's headers, so a logged-out session stops receiving.
	Authenticate func(r *http.Request) (access.Principal, bool)
	// Policy decides which clients receive a message about a host.
	Policy Policy
	// Snapshot, when set, returns the current state of every host; a new
	// client first receives one "host" message per host it may see. It is
	// called outside the hub's lock, while publishing goes on, never twice
	// at once, and must not publish. Clients connecting together share one
	// snapshot (see SnapshotMaxAge).
	Snapshot func() []Host
	// SnapshotMaxAge is how long a snapshot is given to clients that
	// connect later, as long as no host state is published meanwhile; it
	// bounds how old their hosts' last_seen may be. Default
	// DefaultSnapshotMaxAge.
	SnapshotMaxAge time.Duration
	// OriginPatterns are extra allowed browser origins (path.Match
	// patterns on "host:port", or "scheme://host:port" when they contain
	// "://"), for pages served from another host name (a reverse proxy).
	// An origin whose host name equals the request's host name, on any
	// port, is always allowed: pages on hbd_port connect to ws_port.
	OriginPatterns []string

	MaxClients int // concurrent clients; more get 503
	// MaxPerUser bounds the concurrent clients of one user (in open mode,
	// of one remote address), so one caller cannot take every slot; more
	// get 429.
	MaxPerUser int
	// Limits, when set, is asked at every upgrade for MaxClients and
	// MaxPerUser (values <= 0 take the defaults) and wins over them, so a
	// reloaded config applies to the next connection. Connected clients
	// stay connected when the limits are lowered. It must be cheap.
	Limits func() (maxClients, maxPerUser int)
	// SendQueue bounds the frames queued per client; a client whose queue
	// is full when a frame arrives is dropped. Host states and plugin
	// samples replace their queued older version, so they fill it only
	// with distinct hosts (and plugins).
	SendQueue int
	// WriteTimeout bounds the write of one frame: a client that does not
	// take a frame within it is dropped.
	WriteTimeout time.Duration
	// SendBuffer is the kernel send buffer (SO_SNDBUF) of each client's
	// TCP connection, kept small so that a client that stops reading
	// blocks a write (and meets WriteTimeout) after a few frames rather
	// than after megabytes of kernel buffering. Negative keeps the
	// system's (auto-tuned) buffer.
	SendBuffer   int
	PingInterval time.Duration // keepalive pings
	PongTimeout  time.Duration // a pong missing this long after a ping drops the client
	ReadLimit    int64         // largest message accepted from a client
	Reauth       time.Duration // how often a client's session is re-checked
	// FlushInterval is the shortest time between two multi-message frames
	// to a batched client (?batch=1): a message published when the feed
	// was quiet goes out at once, later ones wait for the next flush.
	FlushInterval time.Duration
	// MaxBatch bounds the messages held for batched clients between two
	// flushes (and so the messages of one frame); reaching it flushes
	// early.
	MaxBatch int
	Logger   hclog.Logger
}

// Hub fans messages out to the connected clients. Its methods are safe for
// concurrent use. Stop it with Shutdown.
type Hub struct {
	opts Options
	log  hclog.Logger

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu       sync.RWMutex // held (read) while publishing, (write) to change clients
	clients  map[*client]struct{}
	plain    map[*client]struct{} // the clients taking one frame per message
	batched  map[*client]struct{} // the clients taking multi-message frames
	reserved int                  // upgrades in progress, counted against MaxClients
	perUser  map[string]int       // clients and upgrades by user (or address)
	closing  bool

	dropped   [len(dropReasons)]atomic.Uint64 // by dropReasons index
	coalesced atomic.Uint64                   // queued frames replaced by a newer one

	batch batcher

	hostVer    atomic.Uint64 // host states published (PublishHost), see snapshot
	snapMu     sync.Mutex    // serialises taking snapshots; after mu
	snap       *snapshot     // the last snapshot taken
	snapTaken  atomic.Uint64 // snapshots taken (Options.Snapshot calls)
	snapShared atomic.Uint64 // clients given a snapshot taken for another
}

// New returns a hub ready to serve. It panics when Authenticate or Policy
// is missing, a wiring error.
func New(opts Options) *Hub {
	if opts.Authenticate == nil || opts.Policy == nil {
		panic("ws.New: Authenticate and Policy are required")
	}
	if opts.MaxClients <= 0 {
		opts.MaxClients = DefaultMaxClients
	}
	if opts.SendQueue <= 0 {
		opts.SendQueue = DefaultSendQueue
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.PongTimeout <= 0 {
		opts.PongTimeout = DefaultPongTimeout
	}
	if opts.SendBuffer == 0 {
		opts.SendBuffer = DefaultSendBuffer
	}
	if opts.ReadLimit <= 0 {
		opts.ReadLimit = DefaultReadLimit
	}
	if opts.MaxPerUser <= 0 {
		opts.MaxPerUser = DefaultMaxPerUser
	}
	if opts.Reauth <= 0 {
		opts.Reauth = DefaultReauth
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.SnapshotMaxAge <= 0 {
		opts.SnapshotMaxAge = DefaultSnapshotMaxAge
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Hub{
		opts:    opts,
		log:     opts.Logger.Named("ws"),
		ctx:     ctx,
		cancel:  cancel,
		clients: map[*client]struct{}{},
		plain:   map[*client]struct{}{},
		batched: map[*client]struct{}{},
		perUser: map[string]int{},
		batch:   batcher{kick: make(chan struct{}, 1)},
	}
}

// PortHandler serves the feed at Path and 404 elsewhere, for the listener
// on ws_port (and wss_port).
func (h *Hub) PortHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(Path, h)
	return mux
}

// Clients returns how many clients are connected.
func (h *Hub) Clients() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.clients)
}

// Dropped returns how many clients were dropped for falling behind: a
// full queue, a frame or a pong not taken in time.
func (h *Hub) Dropped() uint64 {
	var n uint64
	for i := range h.dropped {
		n += h.dropped[i].Load()
	}
	return n
}

// Shutdown stops accepting clients, closes every connection with "going
// away" and waits for them to finish, or for ctx.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	h.cancel(ErrShutdown)
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PublishHost sends a "host" message with a host's state.
func (h *Hub) PublishHost(host Host) {
	// Counted before it is sent, and even when nobody listens: a snapshot
	// taken before this count may not be given to a client registered
	// after it (see snapshot).
	h.hostVer.Add(1)
	if h.idle() {
		return
	}
	h.broadcast(TypeHost, host.Name, "h\x00"+host.Name, encode(TypeHost, host))
}

// PublishPlugin sends a "plugin" message with a sample's nested data.
func (h *Hub) PublishPlugin(host, plugin string, ts float64, data map[string]any) {
	if h.idle() {
		return
	}
	h.broadcast(TypePlugin, host, "p\x00"+host+"\x00"+plugin, encode(TypePlugin, PluginData{Host: host, Plugin: plugin, Data: data, Timestamp: ts}))
}

// PublishAlert sends an "alert" message to the clients that may see the
// alert's host.
func (h *Hub) PublishAlert(a Alert) {
	if h.idle() {
		return
	}
	h.broadcast(TypeAlert, a.Hostname, "", encode(TypeAlert, a))
}

// PublishMessage sends a "message" message whose data is msg as JSON (the
// shape of an entry of GET /api/0/messages). An empty host is a
// daemon-wide message (logins, reloads, channel changes): like GET
// /api/0/messages, only administrators (and everyone in open mode) get it.
func (h *Hub) PublishMessage(host string, msg any) {
	if h.idle() {
		return
	}
	h.broadcast(TypeMessage, host, "", encode(TypeMessage, msg))
}

// OnSamples publishes committed samples; pass it to store.Subscribe.
func (h *Hub) OnSamples(ev store.SampleEvent) {
	if h.idle() {
		return
	}
	for _, ps := range ev.Samples {
		h.PublishPlugin(ev.Host, ps.Plugin, ps.Timestamp, protocol.Unflatten(ps.Paths, ps.Values))
	}
}

func encode(typ string, data any) []byte {
	b, err := json.Marshal(Message{Type: typ, Data: data})
	if err != nil {
		// Only a caller passing unencodable data gets here; say so on the
		// feed rather than dropping silently.
		b, _ = json.Marshal(Message{Type: typ, Data: map[string]string{"error": "unencodable " + typ + " data"}})
	}
	return b
}

// idle reports whether nobody listens, to skip encoding.
func (h *Hub) idle() bool { return h.Clients() == 0 }

// mayReceive reports whether p gets a message about host; daemon-wide
// messages (empty host) are for administrators.
func (h *Hub) mayReceive(p access.Principal, host string) bool {
	if host == "" {
		return h.opts.Policy.IsAdmin(p)
	}
	return h.opts.Policy.CanSee(p, host)
}

// broadcast queues msg for every client that wants typ and may see host.
// A non-empty key (a host's state, a host and plugin's sample) replaces a
// frame with the same key still queued for the client.
func (h *Hub) broadcast(typ, host, key string, msg []byte) {
	var slow []*client
	var replaced uint64
	flushNow := false
	h.mu.RLock()
	if len(h.batched) > 0 {
		var merged bool
		merged, flushNow = h.batch.add(typ, host, key, msg, h.opts.MaxBatch)
		if merged {
			replaced++
		}
	}
	for c := range h.plain {
		if !c.wants(typ) || !h.mayReceive(c.principal, host) {
			continue
		}
		switch c.out.push(key, msg) {
		case pushReplaced:
			replaced++
		case pushFull:
			slow = append(slow, c)
		}
	}
	h.mu.RUnlock()
	if replaced > 0 {
		h.coalesced.Add(replaced)
	}
	for _, c := range slow {
		h.remove(c, ErrSlowClient)
	}
	if flushNow {
		h.flush()
	}
}

// remove unregisters c and ends its connection with cause. The first
// removal of a client that fell behind counts it under its reason.
func (h *Hub) remove(c *client, cause error) {
	h.mu.Lock()
	_, ok := h.clients[c]
	delete(h.clients, c)
	delete(h.plain, c)
	delete(h.batched, c)
	h.mu.Unlock()
	if ok {
		for i, r := range dropReasons {
			if errors.Is(cause, r.cause) {
				h.dropped[i].Add(1)
				h.log.Warn("dropping slow client", "user", c.principal.User, "remote", c.remote, "reason", r.label)
				break
			}
		}
	}
	c.cancel(cause)
}

// Recheck makes every client check its session again now; the daemon
// calls it when sessions end early (logout, password change, users
// removed), so a logged-out session stops receiving at once.
func (h *Hub) Recheck() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.clients {
		select {
		case c.recheck <- struct{}{}:
		default:
		}
	}
}

// ServeHTTP upgrades an authenticated request to the feed. The optional
// query parameter types=host,message limits the message types sent;
// batch=1 asks for multi-message frames (JSON arrays of messages).
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		httpError(w, http.StatusMethodNotAllowed, "The live feed accepts only GET upgrade requests")
		return
	}
	origin, err := h.checkOrigin(r)
	if err != nil {
		httpError(w, http.StatusForbidden, err.Error())
		return
	}
	types, err := parseTypes(r.URL.Query().Get("types"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	batched, err := parseBatch(r.URL.Query().Get("batch"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	p, ok := h.opts.Authenticate(r)
	if !ok {
		httpError(w, http.StatusUnauthorized, "Authentication required")
		return
	}
	who := userKey(p, r)
	if status, err := h.reserve(who); err != nil {
		w.Header().Set("Retry-After", "10")
		httpError(w, status, err.Error())
		return
	}
	defer h.wg.Done()
	defer h.unreserve(who)
	accept := &websocket.AcceptOptions{}
	if origin != "" {
		// checkOrigin allowed exactly this origin; let Accept see it too.
		accept.OriginPatterns = []string{escapeGlob(origin)}
	}
	conn, err := websocket.Accept(sendBufferWriter{w, h.opts.SendBuffer}, r, accept)
	if err != nil {
		h.release()
		h.log.Debug("upgrade failed", "remote", r.RemoteAddr, "error", err)
		return
	}
	conn.SetReadLimit(h.opts.ReadLimit)
	c := newClient(h.ctx, conn, p, types, newOutbox(h.opts.SendQueue), r)
	c.batched = batched
	h.register(c)
	h.log.Debug("client connected", "user", p.User, "remote", c.remote)
	cause := c.run(h)
	h.remove(c, cause)
	h.log.Debug("client disconnected", "user", p.User, "remote", c.remote, "reason", cause)
}

// userKey is what MaxPerUser counts: the user, or in open mode (no user)
// the remote address.
func userKey(p access.Principal, r *http.Request) string {
	if p.User != "" {
		return "user:" + p.User
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "addr:" + host
}

// reserve counts an upgrade in progress against MaxClients and the
// caller's MaxPerUser and adds it to the wait group Shutdown waits on. It
// returns the status to answer with when there is no room.
func (h *Hub) reserve(who string) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return http.StatusServiceUnavailable, ErrShutdown
	}
	maxClients, maxPerUser := h.limits()
	if len(h.clients)+h.reserved >= maxClients {
		return http.StatusServiceUnavailable, errors.New("Too many live feed clients, try again later")
	}
	if h.perUser[who] >= maxPerUser {
		return http.StatusTooManyRequests, fmt.Errorf("Too many live feed connections for one user (at most %d): close another tab or client", maxPerUser)
	}
	h.perUser[who]++
	h.reserved++
	h.wg.Add(1)
	return 0, nil
}

// limits returns the client limits in force: Options.Limits when set,
// else MaxClients and MaxPerUser.
func (h *Hub) limits() (maxClients, maxPerUser int) {
	maxClients, maxPerUser = h.opts.MaxClients, h.opts.MaxPerUser
	if h.opts.Limits != nil {
		maxClients, maxPerUser = h.opts.Limits()
		if maxClients <= 0 {
			maxClients = DefaultMaxClients
		}
		if maxPerUser <= 0 {
			maxPerUser = DefaultMaxPerUser
		}
	}
	return maxClients, maxPerUser
}

// unreserve gives back the caller's MaxPerUser slot when its connection
// (or its failed upgrade) ends.
func (h *Hub) unreserve(who string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.perUser[who]--; h.perUser[who] <= 0 {
		delete(h.perUser, who)
	}
}

func (h *Hub) release() {
	h.mu.Lock()
	h.reserved--
	h.mu.Unlock()
}

// register adds c; from now on it gets every message published. Its
// writer then sends the host states of a snapshot taken at this host
// version or later (snapshotFor), so the client misses no change between
// the snapshot and the live messages.
func (h *Hub) register(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reserved--
	if h.closing {
		c.cancel(ErrShutdown)
		return
	}
	h.clients[c] = struct{}{}
	if c.batched {
		h.batched[c] = struct{}{}
		c.cut = h.batch.next()
		h.batch.start.Do(func() {
			h.wg.Add(1)
			go h.flusher()
		})
	} else {
		h.plain[c] = struct{}{}
	}
	// The client's writer takes (or shares) the snapshot, outside the
	// lock: with 10,000 hosts and many clients connecting at once, taking
	// it here made every upgrade, publish and scrape wait for all earlier
	// ones. The version says which snapshots it may be given.
	c.snapshot = h.opts.Snapshot != nil && c.wants(TypeHost)
	c.snapVer = h.hostVer.Load()
}

// sendBufferWriter sets the kernel send buffer of the connection that
// websocket.Accept hijacks (see Options.SendBuffer).
type sendBufferWriter struct {
	http.ResponseWriter
	size int
}

// Hijack implements http.Hijacker for websocket.Accept.
func (w sendBufferWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.size > 0 {
		setSendBuffer(conn, w.size)
	}
	return conn, brw, err
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w sendBufferWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// setSendBuffer sets SO_SNDBUF on the TCP connection under conn (TLS
// included); other connections are left alone.
func setSendBuffer(conn net.Conn, size int) {
	for {
		switch c := conn.(type) {
		case *net.TCPConn:
			c.SetWriteBuffer(size)
			return
		case interface{ NetConn() net.Conn }:
			conn = c.NetConn()
		default:
			return
		}
	}
}

// checkOrigin allows origins on the request's host name (any port) and the
// configured patterns, and requests without an Origin that carry their
// token in a header (non-browser clients). A handshake that could only be
// authenticated by a cookie must name its origin, since browsers attach
// cookies to cross-site handshakes too. It returns the origin's host:port.
func (h *Hub) checkOrigin(r *http.Request) (string, error) {
	o := r.Header.Get("Origin")
	if o == "" {
		// Only a token in a header exempts from the Origin check: any
		// other Authorization (Basic, say) leaves the cookie to
		// authenticate, which a cross-site page can make a browser send.
		if r.Header.Get("Cookie") != "" && !bearer(r.Header.Get("Authorization")) && r.Header.Get("X-Auth-Token") == "" {
			return "", errors.New("A live feed authenticated by cookie needs an Origin header")
		}
		return "", nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return "", errors.New("Origin header is not a URL with a host")
	}
	if strings.EqualFold(u.Hostname(), requestHostname(r)) {
		return u.Host, nil
	}
	for _, pat := range h.opts.OriginPatterns {
		target := u.Host
		if strings.Contains(pat, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(pat), strings.ToLower(target)); ok {
			return u.Host, nil
		}
	}
	return "", errors.New("Origin " + u.Host + " may not open the live feed of " + r.Host)
}

// bearer reports whether an Authorization header carries a bearer token.
func bearer(h string) bool { return len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") }

func requestHostname(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = strings.Trim(r.Host, "[]")
	}
	return host
}

// escapeGlob quotes path.Match metacharacters so s matches only itself.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// typeSet is a bit set of message types a client wants.
type typeSet uint8

var typeBits = map[string]typeSet{TypeHost: 1, TypePlugin: 2, TypeAlert: 4, TypeMessage: 8}

const allTypes typeSet = 15

func parseTypes(v string) (typeSet, error) {
	if v == "" {
		return allTypes, nil
	}
	var s typeSet
	for _, t := range strings.Split(v, ",") {
		bit, ok := typeBits[strings.TrimSpace(t)]
		if !ok {
			return 0, errors.New("types must list host, plugin, alert or message")
		}
		s |= bit
	}
	return s, nil
}

// parseBatch reads the batch parameter: 1 or true asks for multi-message
// frames, 0, false or nothing for one frame per message.
func parseBatch(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, errors.New("batch must be 1 (multi-message frames) or 0")
}

func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// Interface guards.
var (
	_ http.Handler  = (*Hub)(nil)
	_ http.Hijacker = sendBufferWriter{}
)
