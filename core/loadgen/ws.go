package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// WebSocket clients on /hbd. Every client reads the feed and records, for
// each sample it carries, the delivery latency: arrival minus the sample's
// timestamp (the simulated agents stamp samples with the time they send
// them, on the same clock). Halfway through the phase the stalled clients
// stop reading; the others' latencies are then kept apart from the
// baseline ones. At the end each stalled client reads again to learn
// whether the daemon dropped it.

// WSFigures are the WebSocket figures of a phase.
type WSFigures struct {
	Clients int `json:"clients"`
	Stalled int `json:"stalled"`
	// Handshake counts upgrade answers by status ("101" connected,
	// "error" for a transport failure).
	Handshake map[string]uint64 `json:"handshake"`
	Connected int               `json:"connected"`
	// Frames and FrameBytes are what the reading clients received.
	Frames     uint64 `json:"frames"`
	FrameBytes uint64 `json:"frame_bytes"`
	// Samples counts the samples found in plugin frames.
	Samples uint64 `json:"samples"`
	// DroppedReading counts clients that kept reading and were closed by
	// the daemon anyway; DroppedStalled the stalled clients the daemon
	// closed (seen when they read again at the end).
	DroppedReading int `json:"dropped_reading"`
	DroppedStalled int `json:"dropped_stalled"`
	// StalledLastSample is, per stalled client the daemon dropped, the
	// newest sample time it was still sent minus the stall time, in
	// seconds, sorted: about how long the daemon kept writing to it
	// (socket buffers included) before giving up. Negative when the feed
	// lagged behind the samples by more than that.
	StalledLastSample []float64 `json:"stalled_last_sample_after_stall_s,omitempty"`
	// Delivery is the reading clients' sample delivery latency before the
	// stall (baseline) and after it.
	DeliveryBaseline Percentiles `json:"delivery_baseline"`
	DeliveryStalled  Percentiles `json:"delivery_with_stalled"`
	// CloseReasons counts how dropped connections ended.
	CloseReasons map[string]uint64 `json:"close_reasons,omitempty"`
}

type wsClient struct {
	stalled   bool
	handshake string
	connected bool
	frames    uint64
	bytes     uint64
	samples   uint64
	dropped   bool
	reason    string
	lastTS    float64
	base      hist
	after     hist
}

// wsDialer returns an HTTP client whose connections leave from source (a
// loopback address other than 127.0.0.1 when the daemon is on loopback),
// so that per-address caps see many sources.
func wsDialer(source netip.Addr) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if source.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: source.AsSlice()}
	}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// runWS runs n clients until ctx ends; the first stalled of them stop
// reading at stallAt and read again at resumeAt. sources spreads the clients over that many loopback source
// addresses (127.0.0.2 ...) when the URL's host is an IPv4 loopback
// address; 0 uses the default.
func runWS(ctx context.Context, url, token string, n, stalled, sources int, stallAt, resumeAt time.Time) WSFigures {
	var loopback bool
	if u, err := netip.ParseAddrPort(hostPort(url)); err == nil && u.Addr().Is4() && u.Addr().IsLoopback() {
		loopback = true
	}
	clients := make([]*wsClient, n)
	dialers := map[int]*http.Client{}
	stallCh, resumeCh := make(chan struct{}), make(chan struct{})
	go func() {
		for _, x := range []struct {
			at time.Time
			ch chan struct{}
		}{{stallAt, stallCh}, {resumeAt, resumeCh}} {
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(x.at)):
			}
			close(x.ch)
		}
	}()
	var wg sync.WaitGroup
	for i := range clients {
		c := &wsClient{stalled: i < stalled}
		clients[i] = c
		src := 0
		if loopback && sources > 0 {
			src = 2 + i%sources
		}
		hc, ok := dialers[src]
		if !ok {
			var a netip.Addr
			if src > 0 {
				a = netip.AddrFrom4([4]byte{127, byte(src >> 16), byte(src >> 8), byte(src)})
			}
			hc = wsDialer(a)
			dialers[src] = hc
		}
		dialed := make(chan struct{})
		wg.Go(func() { c.run(ctx, url, token, hc, stallCh, resumeCh, stallAt, dialed) })
		if c.stalled {
			// The clients that will stall connect first, so that a cap
			// on clients refuses others rather than them.
			select {
			case <-dialed:
			case <-ctx.Done():
			}
		}
	}
	wg.Wait()
	f := WSFigures{Clients: n, Stalled: stalled, Handshake: map[string]uint64{}, CloseReasons: map[string]uint64{}}
	var base, after hist
	for _, c := range clients {
		f.Handshake[c.handshake]++
		if !c.connected {
			continue
		}
		f.Connected++
		f.Frames += c.frames
		f.FrameBytes += c.bytes
		f.Samples += c.samples
		base.Merge(&c.base)
		after.Merge(&c.after)
		if c.dropped {
			f.CloseReasons[c.reason]++
			if c.stalled {
				f.DroppedStalled++
				if c.lastTS > 0 {
					d := time.Unix(0, int64(c.lastTS*1e9)).Sub(stallAt)
					f.StalledLastSample = append(f.StalledLastSample, round3(d.Seconds()))
				}
			} else {
				f.DroppedReading++
			}
		}
	}
	slices.Sort(f.StalledLastSample)
	f.DeliveryBaseline = base.Percentiles()
	f.DeliveryStalled = after.Percentiles()
	return f
}

func hostPort(url string) string {
	_, rest, _ := strings.Cut(url, "://")
	hp, _, _ := strings.Cut(rest, "/")
	return hp
}

// StalledResumeWait is how long before the end of the phase a stalled
// client reads again to learn whether it was dropped: one that reads
// without an error until the end is alive.
const StalledResumeWait = 3 * time.Second

// run connects, closes dialed once the handshake is answered, and reads
// the feed until ctx ends (pausing from stallCh to resumeCh if stalled).
func (c *wsClient) run(ctx context.Context, url, token string, hc *http.Client, stallCh, resumeCh <-chan struct{}, stallAt time.Time, dialed chan<- struct{}) {
	opts := &websocket.DialOptions{HTTPClient: hc, HTTPHeader: http.Header{}}
	if token != "" {
		opts.HTTPHeader.Set("Authorization", "Bearer "+token)
	}
	conn, resp, err := websocket.Dial(ctx, url, opts)
	close(dialed)
	switch {
	case err == nil:
		c.handshake = strconv.Itoa(http.StatusSwitchingProtocols)
	case resp != nil:
		c.handshake = strconv.Itoa(resp.StatusCode)
		return
	default:
		c.handshake = "error"
		return
	}
	c.connected = true
	conn.SetReadLimit(64 << 20)
	defer conn.CloseNow()
	paused := false
	for {
		if c.stalled && !paused {
			select {
			case <-stallCh:
				paused = true
				select {
				case <-resumeCh:
				case <-ctx.Done():
					return
				}
			default:
			}
		}
		// A cancelled context closes the connection (coder/websocket):
		// the phase's end ends every client.
		_, msg, err := conn.Read(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.dropped, c.reason = true, closeReason(err)
			}
			return
		}
		c.take(msg, stallAt)
	}
}

var (
	pluginPrefix = []byte(`{"type":"plugin`)
	tsKey        = []byte(`"timestamp":`)
)

// take counts a frame and records the delivery latency of every sample in
// it (every "timestamp" of a plugin frame, or of a multi-message frame,
// where only plugin messages have that key).
func (c *wsClient) take(msg []byte, stallAt time.Time) {
	now := time.Now()
	c.frames++
	c.bytes += uint64(len(msg))
	if !bytes.HasPrefix(msg, pluginPrefix) && !bytes.HasPrefix(msg, []byte("[")) {
		return
	}
	// A stalled client's latencies are its own stall; only its newest
	// sample time is kept.
	h := &c.base
	switch {
	case c.stalled:
		h = nil
	case !now.Before(stallAt):
		h = &c.after
	}
	for rest := msg; ; {
		i := bytes.Index(rest, tsKey)
		if i < 0 {
			return
		}
		rest = rest[i+len(tsKey):]
		j := bytes.IndexAny(rest, ",}")
		if j < 0 {
			return
		}
		ts, err := strconv.ParseFloat(string(rest[:j]), 64)
		if err != nil {
			continue
		}
		c.samples++
		c.lastTS = max(c.lastTS, ts)
		if h != nil {
			h.Record(now.Sub(time.Unix(0, int64(ts*1e9))))
		}
	}
}

func closeReason(err error) string {
	if s := websocket.CloseStatus(err); s != -1 {
		return "close " + strconv.Itoa(int(s))
	}
	if errors.Is(err, net.ErrClosed) {
		return "closed"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "eof (closed without a close frame)"
	}
	if errors.Is(err, syscall.ECONNRESET) {
		return "reset"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return fmt.Sprintf("%.60s", err.Error())
}
