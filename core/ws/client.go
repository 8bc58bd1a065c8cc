package ws

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/hbdmon/hbd/core/access"
)

// client is one connected feed reader. Its context is cancelled, with the
// reason as cause, when it must go.
type client struct {
	conn      *websocket.Conn
	principal access.Principal
	types     typeSet
	batched   bool   // takes multi-message frames (?batch=1)
	cut       uint64 // a batched client gets the messages numbered from cut on
	remote    string
	req       *http.Request // headers of the upgrade, for re-authentication

	out *outbox
	// snapshot is set when the client first gets the host states (see
	// snapshotFor); snapVer is the hub's host version at its registration.
	snapshot bool
	snapVer  uint64
	recheck  chan struct{}
	// deadline drops the client when a frame is not taken in time; armed
	// around each write by the writer.
	deadline *time.Timer

	ctx    context.Context
	cancel context.CancelCauseFunc
}

func newClient(parent context.Context, conn *websocket.Conn, p access.Principal, types typeSet, out *outbox, r *http.Request) *client {
	ctx, cancel := context.WithCancelCause(parent)
	req := r.Clone(context.Background())
	req.Body = http.NoBody
	return &client{
		conn: conn, principal: p, types: types, remote: r.RemoteAddr, req: req,
		out: out, recheck: make(chan struct{}, 1), ctx: ctx, cancel: cancel,
	}
}

func (c *client) wants(typ string) bool { return c.types&typeBits[typ] != 0 }

// run serves the client until it must go, closes the connection and
// returns why.
func (c *client) run(h *Hub) error {
	readDone := make(chan struct{})
	go c.readLoop(readDone)
	pingDone := make(chan struct{})
	go c.pingLoop(h.opts.PingInterval, h.opts.PongTimeout, pingDone)

	c.writeLoop(h)
	if c.deadline != nil {
		c.deadline.Stop()
	}
	cause := context.Cause(c.ctx)
	switch {
	case errors.Is(cause, ErrShutdown):
		c.conn.Close(websocket.StatusGoingAway, "server shutting down")
	case errors.Is(cause, ErrSessionEnded):
		c.conn.Close(websocket.StatusPolicyViolation, "session ended, log in again")
	default:
		// Slow or gone peers get no close handshake: waiting on them is
		// what we are avoiding.
		c.conn.CloseNow()
	}
	<-pingDone
	<-readDone
	return cause
}

func (c *client) writeLoop(h *Hub) {
	reauth := time.NewTicker(h.opts.Reauth)
	defer reauth.Stop()
	// The session's end closes the feed on time, not at the next tick.
	var expiry <-chan time.Time
	if !c.principal.Expires.IsZero() {
		t := time.NewTimer(time.Until(c.principal.Expires))
		defer t.Stop()
		expiry = t.C
	}
	if c.snapshot && !c.writeSnapshot(h) {
		return
	}
	for {
		// One frame per turn, so re-authentication is not starved by a
		// busy queue.
		select {
		case <-c.ctx.Done():
			return
		case <-c.out.wake:
			if msg, ok := c.out.pop(); ok && !c.write(msg, h.opts.WriteTimeout) {
				return
			}
			continue
		case <-reauth.C:
		case <-c.recheck:
		case <-expiry:
			expiry = nil
		}
		if !c.reauthenticate(h) {
			return
		}
	}
}

// reauthenticate checks the client's session again; it cancels the client
// and returns false when the session has ended.
func (c *client) reauthenticate(h *Hub) bool {
	p, ok := h.opts.Authenticate(c.req)
	if !ok || p.User != c.principal.User {
		c.cancel(ErrSessionEnded)
		return false
	}
	// Role changes (admin granted or revoked) apply from now on.
	h.mu.Lock()
	c.principal = p
	h.mu.Unlock()
	return true
}

// write sends one frame. A frame not taken within timeout cancels the
// client with errWriteTimeout (a drop) before the connection is closed,
// so the read loop's failure that follows cannot take the cause; any
// other failure cancels it with errWriteFailed. Only the writer calls it.
func (c *client) write(msg []byte, timeout time.Duration) bool {
	if c.deadline == nil {
		c.deadline = time.AfterFunc(timeout, func() { c.cancel(errWriteTimeout) })
	} else {
		c.deadline.Reset(timeout)
	}
	err := c.conn.Write(c.ctx, websocket.MessageText, msg)
	if !c.deadline.Stop() {
		return false // timed out
	}
	if err != nil {
		c.cancel(errWriteFailed)
		return false
	}
	return true
}

// readLoop reads (and ignores) what the client sends, which keeps control
// frames (pongs, close) flowing; the read limit bounds what it may send.
func (c *client) readLoop(done chan<- struct{}) {
	defer close(done)
	for {
		if _, _, err := c.conn.Read(context.Background()); err != nil {
			c.cancel(errPeerGone)
			return
		}
	}
}

func (c *client) pingLoop(every, timeout time.Duration, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			// As in write, the timeout's cause is set before the
			// connection closes.
			deadline := time.AfterFunc(timeout, func() { c.cancel(errPingTimeout) })
			err := c.conn.Ping(c.ctx)
			if !deadline.Stop() {
				return
			}
			if err != nil {
				c.cancel(errPeerGone)
				return
			}
		}
	}
}
